import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { createHttpObserver, createServiceMetrics, startTracing } from '@care/observability'
import { serve } from '@hono/node-server'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { createSessionManagerApp, type SessionManagerAppOptions } from '../app.js'
import { tokenDigest } from '../config.js'
import { requestBody } from '../test-support/records.js'

const TOKEN = 'caller-token-0123456789'

function appWithLog(options: { sample?: number; shuttingDown?: () => boolean } = {}) {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
      done()
    },
  })
  const logger = pino(sink)
  const sessions = {
    start: async () => ({ status: 201 as const, output: { session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0' } }),
    openSessions: () => 0,
  } as unknown as ReturnType<SessionManagerAppOptions['sessions']>
  const app = createSessionManagerApp({
    sessions: () => sessions,
    config: {
      tokens: new Map([[tokenDigest(TOKEN), new Set(['caller' as const])]]),
      bodyLimitBytes: 16 * 1024,
    },
    logger,
    observer: createHttpObserver({
      metrics: createServiceMetrics({ service: 'session-manager', defaultMetrics: false }),
      tracing: startTracing({ service: 'session-manager', env: {} }),
      logger,
      accessLogSample: options.sample ?? 1,
    }),
    ...(options.shuttingDown ? { shuttingDown: options.shuttingDown } : {}),
  })
  return { app, lines }
}

describe('request observation', () => {
  it('returns the caller’s x-request-id, or a new one when absent or unsafe', async () => {
    const { app } = appWithLog()
    expect(
      (await app.request('/healthz', { headers: { 'x-request-id': 'abc-123' } })).headers.get('x-request-id'),
    ).toBe('abc-123')
    const generated = (await app.request('/healthz')).headers.get('x-request-id')
    expect(generated).toMatch(/^[0-9a-f-]{36}$/)
    const unsafe = (await app.request('/healthz', { headers: { 'x-request-id': 'a b"\n' } })).headers.get(
      'x-request-id',
    )
    expect(unsafe).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('writes one access-log line per request without the token or the body', async () => {
    const { app, lines } = appWithLog()
    const body = requestBody({ user_id: 'secret-user-in-body' })
    const res = await app.request('/sessions.start', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        'x-request-id': 'req-1',
      },
      body: JSON.stringify(body),
    })
    expect(res.status).toBe(201)
    const access = lines.filter((l) => l.msg === 'request')
    expect(access).toHaveLength(1)
    expect(access[0]).toMatchObject({
      method: 'POST',
      route: '/sessions.start',
      status: 201,
      request_id: 'req-1',
    })
    expect(access[0]!.duration_ms).toEqual(expect.any(Number))
    expect(access[0]!.bytes).toBeGreaterThan(0)
    const logged = JSON.stringify(lines)
    expect(logged).not.toContain(TOKEN)
    expect(logged).not.toContain('secret-user-in-body')
  })

  it('samples access-log lines below 500 but never drops a 5xx', async () => {
    const { app, lines } = appWithLog({ sample: 0, shuttingDown: () => true })
    await app.request('/healthz')
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(0)
    expect((await app.request('/readyz')).status).toBe(503)
    expect(lines.filter((l) => l.msg === 'request')).toMatchObject([{ route: '/readyz', status: 503 }])
  })

  it('answers /readyz 503 as soon as shutdown starts', async () => {
    let stopping = false
    const { app } = appWithLog({ shuttingDown: () => stopping })
    expect((await app.request('/readyz')).status).toBe(200)
    stopping = true
    const res = await app.request('/readyz')
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ error: 'not_ready', message: 'Shutting down.' })
  })

  it('over a real socket, returns the request id and logs the body-read answers (201, 400, 413)', async () => {
    const { app, lines } = appWithLog()
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })
    await new Promise<void>((resolve) => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const post = (body: string, id: string) =>
      fetch(`${url}/sessions.start`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-request-id': id },
        body,
      })
    try {
      const created = await post(`\ufeff${JSON.stringify(requestBody())}`, 'ok-1')
      expect([created.status, created.headers.get('x-request-id')]).toEqual([201, 'ok-1'])
      const malformed = await post('{"schema_version":', 'bad-1')
      expect([malformed.status, malformed.headers.get('x-request-id')]).toEqual([400, 'bad-1'])
      expect(await malformed.json()).toMatchObject({ error: 'malformed_json' })
      const large = await post(JSON.stringify({ pad: 'x'.repeat(17 * 1024) }), 'big-1')
      expect([large.status, large.headers.get('x-request-id')]).toEqual([413, 'big-1'])
      const missing = await fetch(`${url}/nowhere`, { headers: { 'x-request-id': 'nf-1' } })
      expect([missing.status, missing.headers.get('x-request-id')]).toEqual([404, 'nf-1'])
    } finally {
      server.close()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(lines.filter((l) => l.msg === 'request')).toMatchObject([
      { status: 201, request_id: 'ok-1' },
      { status: 400, request_id: 'bad-1' },
      { status: 413, request_id: 'big-1' },
      { status: 404, request_id: 'nf-1', route: 'unmatched' },
    ])
  })
})
