import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createHttpObserver,
  createServiceMetrics,
  loadObservabilityConfig,
  startTracing,
} from '@care/observability'
import { parseMetrics } from '@care/observability/testing'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionManagerApp } from '../app.js'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'

const cleanup: (() => unknown)[] = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function start(
  env: Record<string, string> = {},
): Promise<{ running: RunningSessionManager; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'care-metrics-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const config = loadConfig({ PORT: '0', CARE_DATA_DIR: dir, ...env })
  const running = await startSessionManager(config, {
    logger: pino({ level: 'silent' }),
    observability: loadObservabilityConfig(env),
  })
  cleanup.push(() => running.stop())
  await running.ready
  return { running, url: `http://127.0.0.1:${running.port}` }
}

async function scrape(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/metrics`, { headers })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain')
  return parseMetrics(await res.text())
}

describe('/metrics', () => {
  it('counts the traffic sent, by route template and status, with commit and session figures', async () => {
    const { url } = await start()
    const started: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await postJson(`${url}/sessions.start`, requestBody())
      expect(res?.status).toBe(201)
      started.push(res!.body.session_id as string)
    }
    for (const id of started.slice(0, 2)) {
      expect((await postJson(`${url}/sessions.end`, requestBody({ session_id: id })))?.status).toBe(200)
    }
    expect((await postJson(`${url}/sessions.start`, { not: 'valid' }))?.status).toBe(400)
    for (const id of started.slice(0, 3)) expect((await fetch(`${url}/sessions/${id}`)).status).toBe(200)
    expect((await fetch(`${url}/no/such/${started[0]}`)).status).toBe(404)

    const m = await scrape(url)
    expect(m.value('care_http_requests_total', { route: '/sessions.start', status: '201' })).toBe(5)
    expect(m.value('care_http_requests_total', { route: '/sessions.start', status: '400' })).toBe(1)
    expect(m.value('care_http_requests_total', { route: '/sessions.end', status: '200' })).toBe(2)
    expect(m.value('care_http_requests_total', { route: '/sessions/:session_id', status: '200' })).toBe(3)
    expect(m.value('care_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1)
    expect(m.histogramCount('care_http_request_duration_seconds', { route: '/sessions.start' })).toBe(6)
    // 7 events stored (5 starts, 2 ends), in at most 7 group commits, each with one fdatasync.
    const records = m.histogram('care_event_log_commit_records')
    expect(records.sum).toBe(7)
    expect(records.count).toBeGreaterThanOrEqual(1)
    expect(m.histogram('care_event_log_fdatasync_seconds').count).toBe(records.count)
    expect(m.value('care_sessions_open')).toBe(3)
    expect(m.histogram('care_event_log_commit_bytes').sum).toBeGreaterThan(0)
    expect(m.names).toEqual(
      expect.arrayContaining(['care_recovery_duration_seconds', 'nodejs_eventloop_lag_seconds']),
    )
    // No id ever becomes a label value.
    const routes = m.labelValues('care_http_requests_total', 'route')
    for (const id of started) expect(routes.join(' ')).not.toContain(id)
  })

  it('counts timeout ends by reason', async () => {
    const { url } = await start({ CARE_IDLE_TIMEOUT: '300ms' })
    expect((await postJson(`${url}/sessions.start`, requestBody()))?.status).toBe(201)
    let m = await scrape(url)
    for (let i = 0; i < 50 && m.value('care_session_timeouts_total', { reason: 'idle_timeout' }) === 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      m = await scrape(url)
    }
    expect(m.value('care_session_timeouts_total', { reason: 'idle_timeout' })).toBe(1)
    expect(m.value('care_sessions_open')).toBe(0)
  })

  it('counts 503s by cause, with Retry-After', async () => {
    const metrics = createServiceMetrics({ service: 'session-manager', defaultMetrics: false })
    const app = createSessionManagerApp({
      sessions: () => undefined, // still recovering: every session route answers 503 not_ready
      config: { tokens: new Map(), bodyLimitBytes: 16 * 1024 },
      logger: pino({ level: 'silent' }),
      observer: createHttpObserver({
        metrics,
        tracing: startTracing({ service: 't', env: {} }),
        logger: pino({ level: 'silent' }),
        accessLogSample: 0,
      }),
    })
    for (let i = 0; i < 3; i++) {
      const res = await app.request('/sessions.start', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(requestBody()),
      })
      expect(res.status).toBe(503)
    }
    const m = parseMetrics(await metrics.registry.metrics())
    expect(m.value('care_http_unavailable_total', { cause: 'not_ready' })).toBe(3)
    expect(m.value('care_http_requests_total', { route: '/sessions.start', status: '503' })).toBe(3)
  })

  it('is served on its own port with CARE_METRICS_PORT, and not on the service port', async () => {
    const { running, url } = await start({ CARE_METRICS_PORT: '0' })
    expect(running.metricsPort).toBeGreaterThan(0)
    expect((await fetch(`${url}/metrics`)).status).toBe(404)
    const m = await scrape(`http://127.0.0.1:${running.metricsPort}`)
    expect(m.names).toContain('care_http_requests_total')
  })

  it('needs a metrics token once CARE_METRICS_TOKENS is set', async () => {
    const token = 'metrics-token-0123456789'
    const { url } = await start({ CARE_METRICS_TOKENS: token })
    expect((await fetch(`${url}/metrics`)).status).toBe(401)
    expect(
      (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
    ).toBe(401)
    await scrape(url, { authorization: `Bearer ${token}` })
  })
})
