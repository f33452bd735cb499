import { Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createHttpObserver, createServiceMetrics, startTracing } from './index.js'
import { parseMetrics } from './testing.js'

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The request metrics as prom-client's own Counter and Histogram report the same observations. */
function reference() {
  const registry = new Registry()
  const requests = new Counter({
    name: 'care_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'care_http_request_duration_seconds',
    help: 'Time from receiving a request to finishing its response, by method and route template.',
    labelNames: ['method', 'route'],
    buckets: BUCKETS,
    registers: [registry],
  })
  return {
    registry,
    observe(method: string, route: string, status: number, seconds: number) {
      requests.inc({ method, route, status: String(status) })
      duration.observe({ method, route }, seconds)
    },
  }
}

const httpLines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.includes('care_http_request'))
    .sort()

describe('createServiceMetrics request metrics', () => {
  it('print exactly what prom-client prints for the same requests (counts, cumulative buckets, sum, count)', async () => {
    const metrics = createServiceMetrics({ service: 'test', defaultMetrics: false })
    const expected = reference()
    const requests: [string, string, number, number][] = [
      ['POST', '/sessions.start', 201, 0.0004],
      ['POST', '/sessions.start', 201, 0.001], // exactly on a bound: counted in le="0.001"
      ['POST', '/sessions.start', 400, 0.0031],
      ['GET', '/sessions/:session_id', 200, 0.02],
      ['POST', '/sessions.start', 201, 12], // above the largest bound: +Inf only
      ['GET', 'unmatched', 404, 0.0001],
      ['GET', '/sessions/:session_id', 200, 0.25],
    ]
    for (const [method, route, status, seconds] of requests) {
      metrics.observeRequest({ method, route, status, seconds })
      expected.observe(method, route, status, seconds)
    }
    expect(httpLines(await metrics.registry.metrics())).toEqual(httpLines(await expected.registry.metrics()))
    const json = (await metrics.registry.getMetricsAsJSON()).filter((m) =>
      m.name.startsWith('care_http_request'),
    )
    expect(json).toEqual(await expected.registry.getMetricsAsJSON())
  })

  it('counts by route template and status, folds unknown methods into OTHER, and resets', async () => {
    const metrics = createServiceMetrics({ service: 'test', defaultMetrics: false })
    for (let i = 0; i < 3; i++)
      metrics.observeRequest({ method: 'POST', route: '/infer', status: 200, seconds: 0.002 })
    metrics.observeRequest({ method: 'BREW', route: '/infer', status: 405, seconds: 0.001 })
    metrics.observeRequest({
      method: 'POST',
      route: '/infer',
      status: 503,
      seconds: 0.003,
      cause: 'not_ready',
    })
    const parsed = parseMetrics(await metrics.registry.metrics())
    expect(parsed.value('care_http_requests_total', { method: 'POST', route: '/infer', status: '200' })).toBe(
      3,
    )
    expect(
      parsed.value('care_http_requests_total', { method: 'OTHER', route: '/infer', status: '405' }),
    ).toBe(1)
    expect(parsed.value('care_http_unavailable_total', { cause: 'not_ready' })).toBe(1)
    expect(
      parsed.histogramCount('care_http_request_duration_seconds', { method: 'POST', route: '/infer' }),
    ).toBe(4)
    metrics.registry.resetMetrics()
    expect(httpLines(await metrics.registry.metrics()).filter((line) => !line.startsWith('#'))).toEqual([])
  })
})

describe('createHttpObserver', () => {
  it('records each request once, and builds an access-log line only for a request it logs', () => {
    const seen: { route: string; status: number }[] = []
    const logged: object[] = []
    let draws = 0
    const observer = createHttpObserver({
      metrics: {
        registry: new Registry(),
        observeRequest: (r) => seen.push({ route: r.route, status: r.status }),
      },
      tracing: startTracing({ service: 'test', env: {} }),
      logger: { info: (line) => logged.push(line) },
      accessLogSample: 0.5,
      random: () => (draws++ % 2 === 0 ? 0.9 : 0.1),
    })
    const first = observer.begin('GET', { 'x-request-id': 'req-1' })
    expect(first.requestId).toBe('req-1')
    expect(first.traceContext).toBeUndefined()
    expect(first.span).toBeUndefined()
    first.end({ route: '/a', status: 200 })
    first.end({ route: '/a', status: 200 })
    const second = observer.begin('GET', new Headers())
    second.end({ route: '/b', status: 200, sessionId: '01JNC3G8Z9X7W6V5T4S3R2Q1P0' })
    observer.begin('POST', {}).end({ route: '/c', status: 503 })
    expect(seen).toEqual([
      { route: '/a', status: 200 },
      { route: '/b', status: 200 },
      { route: '/c', status: 503 },
    ])
    // First draw 0.9 (not logged), second 0.1 (logged); a 5xx is always logged.
    expect(logged).toMatchObject([
      { request_id: second.requestId, route: '/b', status: 200, session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0' },
      { route: '/c', status: 503 },
    ])
    expect(second.requestId).toMatch(/^[0-9a-f-]{36}$/)
  })
})
