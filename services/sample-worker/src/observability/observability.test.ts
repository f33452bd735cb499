import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { loadObservabilityConfig } from '@care/observability'
import { parseMetrics } from '@care/observability/testing'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createWorkerApp } from '../app.js'
import { type RunningWorker, startWorker } from '../server.js'

const SESSION = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function start(env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'worker-obs-'))
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
      done()
    },
  })
  const worker: RunningWorker = await startWorker({
    port: 0,
    host: '127.0.0.1',
    dataDir: join(dir, 'worker'),
    logger: pino(sink),
    observability: loadObservabilityConfig(env),
  })
  cleanups.push(async () => {
    await worker.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { worker, url: worker.url, lines, dir }
}

async function linesOnDisk(eventsDir: string): Promise<number> {
  let count = 0
  for (const name of await readdir(eventsDir))
    if (name.endsWith('.jsonl'))
      count += (await readFile(join(eventsDir, name), 'utf8')).split('\n').filter(Boolean).length
  return count
}

function infer(url: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      schema_version: '1.1',
      record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1AA',
      user_id: 'user-in-body',
      timestamp: '2026-03-01T12:00:00.000Z',
      source: 'ui',
      origin: 'human',
      performer_id: 'caregiver-7',
      text: 'Is it time?',
    }),
  })
}

describe('sample worker observability', () => {
  it('counts the traffic sent on /metrics, by route template and status', async () => {
    const { url } = await start()
    for (let i = 0; i < 3; i++) expect((await infer(url, { 'x-session-id': SESSION })).status).toBe(200)
    expect((await infer(url)).status).toBe(400)
    expect((await fetch(`${url}/nope/${SESSION}`)).status).toBe(404)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)

    const res = await fetch(`${url}/metrics`)
    expect(res.status).toBe(200)
    const m = parseMetrics(await res.text())
    expect(m.value('care_http_requests_total', { method: 'POST', route: '/infer', status: '200' })).toBe(3)
    expect(m.value('care_http_requests_total', { method: 'POST', route: '/infer', status: '400' })).toBe(1)
    // Each /infer calls the worker's own downstream step once.
    expect(m.value('care_http_requests_total', { route: '/steps/annotate', status: '200' })).toBe(3)
    expect(m.value('care_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1)
    expect(m.value('care_http_requests_total', { route: '/readyz', status: '200' })).toBe(1)
    expect(m.histogramCount('care_http_request_duration_seconds', { route: '/infer' })).toBe(4)
    expect(m.names).toContain('nodejs_eventloop_lag_seconds')
    expect(m.labelValues('care_http_requests_total', 'route').join(' ')).not.toContain(SESSION)
  })

  it('reports its event log’s group commits: records per commit and fdatasync time', async () => {
    const { url, dir } = await start()
    const before = parseMetrics(await (await fetch(`${url}/metrics`)).text())
    expect(before.histogram('care_event_log_commit_records')).toEqual({ count: 0, sum: 0 })
    const sent = await Promise.all(
      Array.from({ length: 4 }, () => infer(url, { 'x-session-id': SESSION }).then((r) => r.status)),
    )
    expect(sent).toEqual([200, 200, 200, 200])

    const m = parseMetrics(await (await fetch(`${url}/metrics`)).text())
    // Every record on disk was counted in exactly one group commit, each with one fdatasync.
    const onDisk = await linesOnDisk(join(dir, 'worker', 'events'))
    expect(onDisk).toBeGreaterThanOrEqual(4)
    const records = m.histogram('care_event_log_commit_records')
    expect(records.sum).toBe(onDisk)
    expect(records.count).toBeGreaterThanOrEqual(1)
    expect(records.count).toBeLessThanOrEqual(onDisk)
    expect(m.histogram('care_event_log_fdatasync_seconds').count).toBe(records.count)
    expect(m.histogram('care_event_log_commit_bytes').sum).toBeGreaterThan(0)
  })

  it('logs one access line per request with request id and session id, never the body', async () => {
    const { url, lines } = await start()
    const res = await infer(url, { 'x-session-id': SESSION, 'x-request-id': 'req-42' })
    expect(res.headers.get('x-request-id')).toBe('req-42')
    await new Promise((r) => setTimeout(r, 20))
    const access = lines.filter((l) => l.msg === 'request' && l.route === '/infer')
    expect(access).toEqual([
      expect.objectContaining({ method: 'POST', status: 200, request_id: 'req-42', session_id: SESSION }),
    ])
    expect(access[0]!.bytes).toBeGreaterThan(0)
    expect(JSON.stringify(lines)).not.toContain('user-in-body')
  })

  it('serves /metrics on its own port with CARE_METRICS_PORT, and not on the service port', async () => {
    const { worker, url } = await start({ CARE_METRICS_PORT: '0' })
    expect((await fetch(`${url}/metrics`)).status).toBe(404)
    const scraped = await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)
    expect(scraped.status).toBe(200)
    expect(parseMetrics(await scraped.text()).names).toContain('care_http_requests_total')
  })

  it('answers /readyz 503 as soon as shutdown starts', async () => {
    let stopping = false
    const app = createWorkerApp({
      // Readiness never writes: an event log that refuses every append.
      eventLog: { append: () => Promise.reject(new Error('not used')), close: async () => {} },
      logger: pino({ level: 'silent' }),
      downstreamUrl: () => 'http://127.0.0.1:9/unused',
      shuttingDown: () => stopping,
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    stopping = true
    const res = await fetch(`${url}/readyz`)
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ error: 'not_ready', message: 'Shutting down.' })
  })
})
