import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { postJson, requestBody } from '../test-support/records.js'
import { spawnSessionManager, waitReady } from '../test-support/spawn-session-manager.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('OTLP export from the running process', { timeout: 30_000 }, () => {
  it('sends the request spans, with session.id, to OTEL_EXPORTER_OTLP_ENDPOINT by SIGTERM at the latest', async () => {
    const received: { url: string; headers: IncomingHttpHeaders; body: string }[] = []
    const collector = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => {
        body += chunk
      })
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body })
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise((resolve) => collector.close(resolve)))
    const dir = mkdtempSync(join(tmpdir(), 'care-otlp-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))

    const sm = await spawnSessionManager({
      CARE_DATA_DIR: dir,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_SERVICE_NAME: 'care-sm-under-test',
    })
    cleanups.push(() => sm.kill('SIGKILL'))
    await waitReady(sm.url)
    const traceId = '5b8efff798038103d269b633813fc60c'
    const started = await postJson(`${sm.url}/sessions.start`, requestBody(), {
      traceparent: `00-${traceId}-eee19b7ec3c1b174-01`,
    })
    expect(started?.status).toBe(201)
    expect(await sm.kill('SIGTERM')).toBe(0)

    const traces = received.filter((r) => r.url === '/v1/traces')
    expect(traces.length).toBeGreaterThan(0)
    const all = traces.map((r) => r.body).join('\n')
    expect(all).toContain('care-sm-under-test')
    expect(all).toContain('POST /sessions.start')
    expect(all).toContain(started!.body.session_id as string)
    expect(all.toLowerCase()).toContain(traceId)
  })
})
