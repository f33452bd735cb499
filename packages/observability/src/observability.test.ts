import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  closeGracefully,
  isClientDisconnect,
  loadObservabilityConfig,
  metricsAccessAllowed,
  ObservabilityConfigError,
  requestIdFrom,
  startTracing,
} from './index.js'

describe('loadObservabilityConfig', () => {
  it('defaults to a 10 s grace, every request logged, /metrics on the service port without tokens', () => {
    expect(loadObservabilityConfig({})).toEqual({
      shutdownGraceMs: 10_000,
      accessLogSample: 1,
      metrics: { kind: 'service-port', tokenDigests: new Set() },
    })
  })

  it('reads a separate metrics listener, sampling and grace', () => {
    expect(
      loadObservabilityConfig({
        CARE_METRICS_PORT: '9464',
        CARE_ACCESS_LOG_SAMPLE: '0.25',
        CARE_SHUTDOWN_GRACE: '1500ms',
      }),
    ).toEqual({
      shutdownGraceMs: 1500,
      accessLogSample: 0.25,
      metrics: { kind: 'separate', host: '127.0.0.1', port: 9464 },
    })
  })

  it.each([
    { CARE_SHUTDOWN_GRACE: 'soon' },
    { CARE_ACCESS_LOG_SAMPLE: '2' },
    { CARE_ACCESS_LOG_SAMPLE: '-0.5' },
    { CARE_METRICS_PORT: '70000' },
    { CARE_METRICS_TOKENS: 'short' },
  ])('refuses %o naming the variable', (env) => {
    const name = Object.keys(env)[0]!
    expect(() => loadObservabilityConfig(env)).toThrow(ObservabilityConfigError)
    expect(() => loadObservabilityConfig(env)).toThrow(name)
  })
})

describe('metricsAccessAllowed', () => {
  const token = 'metrics-token-0123456789'
  const withToken = loadObservabilityConfig({ CARE_METRICS_TOKENS: token }).metrics
  const without = loadObservabilityConfig({}).metrics

  it('needs the bearer token once one is configured, whatever the host', () => {
    expect(metricsAccessAllowed(withToken, `Bearer ${token}`, '0.0.0.0')).toBe(true)
    expect(metricsAccessAllowed(withToken, `Bearer ${token}x`, '127.0.0.1')).toBe(false)
    expect(metricsAccessAllowed(withToken, undefined, '127.0.0.1')).toBe(false)
  })

  it('without tokens answers only a loopback-bound service', () => {
    expect(metricsAccessAllowed(without, undefined, '127.0.0.1')).toBe(true)
    expect(metricsAccessAllowed(without, undefined, '0.0.0.0')).toBe(false)
  })
})

describe('requestIdFrom', () => {
  it('keeps a plain token and replaces anything else with a UUID', () => {
    expect(requestIdFrom('req-1.a:b_c')).toBe('req-1.a:b_c')
    for (const bad of [undefined, '', 'has space', 'x'.repeat(129), ['a', 'b'], 'a\nb']) {
      expect(requestIdFrom(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    }
  })
})

describe('isClientDisconnect', () => {
  it('recognises resets and aborts, also as a cause, and nothing else', () => {
    expect(isClientDisconnect(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true)
    expect(isClientDisconnect(new Error('aborted'))).toBe(true)
    expect(
      isClientDisconnect(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'EPIPE' }) })),
    ).toBe(true)
    expect(isClientDisconnect(new TypeError('boom'))).toBe(false)
    expect(isClientDisconnect(Object.assign(new Error('disk'), { code: 'EIO' }))).toBe(false)
  })
})

describe('startTracing', () => {
  it('is off, with a no-op tracer, when no OTLP endpoint is set or the SDK is disabled', () => {
    expect(startTracing({ service: 's', env: {} }).enabled).toBe(false)
    expect(
      startTracing({
        service: 's',
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' },
      }).enabled,
    ).toBe(false)
  })
})

describe('closeGracefully', () => {
  it('lets a request in flight finish within the grace period', async () => {
    const server = createServer((_req, res) => setTimeout(() => res.end('done'), 200))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const answer = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())
    await new Promise((r) => setTimeout(r, 50))
    expect(await closeGracefully(server, { graceMs: 5000 })).toBe(true)
    expect(await answer).toBe('done')
  })

  it('cuts a stuck client off once the grace period is over', async () => {
    const server = createServer((req, res) => req.on('end', () => res.end('never')).resume())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nhalf')
    await new Promise((r) => setTimeout(r, 50))
    const started = performance.now()
    expect(await closeGracefully(server, { graceMs: 300 })).toBe(false)
    expect(performance.now() - started).toBeLessThan(1500)
    await new Promise((resolve) => socket.once('close', resolve))
  })
})
