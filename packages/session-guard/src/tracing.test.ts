import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import express from 'express'
import { Hono } from 'hono'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { sessionGuard as expressGuard } from './express/index.js'
import { sessionGuard as honoGuard } from './hono/index.js'
import { sessionFetch } from './propagation.js'

const SESSION_ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const exporter = new InMemorySpanExporter()
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
trace.setGlobalTracerProvider(provider)
const tracer = provider.getTracer('test')

beforeEach(() => exporter.reset())
afterAll(() => provider.shutdown())

describe('session.id on the active span (with @opentelemetry/api installed)', () => {
  it('the Hono guard records the accepted id on the request span', async () => {
    const app = new Hono()
    app.use(async (_c, next) =>
      tracer.startActiveSpan('request', async (span) => {
        await next()
        span.end()
      }),
    )
    app.post('/work', honoGuard(), (c) => c.json({ ok: true }))
    const res = await app.request('/work', { method: 'POST', headers: { 'x-session-id': SESSION_ID } })
    expect(res.status).toBe(200)
    expect(exporter.getFinishedSpans().map((s) => s.attributes['session.id'])).toEqual([SESSION_ID])
  })

  it('the Express guard records the accepted id on the request span', async () => {
    const app = express()
    app.use((_req, res, next) =>
      tracer.startActiveSpan('request', (span) => {
        res.on('finish', () => span.end())
        next()
      }),
    )
    app.get('/work', expressGuard(), (_req, res) => {
      res.json({ ok: true })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const { port } = server.address() as { port: number }
      const res = await fetch(`http://127.0.0.1:${port}/work`, { headers: { 'x-session-id': SESSION_ID } })
      expect(res.status).toBe(200)
      await new Promise((r) => setTimeout(r, 20))
      expect(exporter.getFinishedSpans().map((s) => s.attributes['session.id'])).toEqual([SESSION_ID])
    } finally {
      server.close()
    }
  })

  it('a rejected request leaves no session.id on the span', async () => {
    const app = new Hono()
    app.use(async (_c, next) =>
      tracer.startActiveSpan('request', async (span) => {
        await next()
        span.end()
      }),
    )
    app.post('/work', honoGuard(), (c) => c.json({ ok: true }))
    const res = await app.request('/work', { method: 'POST', headers: { 'x-session-id': 'not-a-ulid' } })
    expect(res.status).toBe(400)
    expect(exporter.getFinishedSpans()[0]?.attributes['session.id']).toBeUndefined()
  })
})

describe('session id in W3C baggage (optional)', () => {
  it('adds session.id to baggage only when asked, keeping other entries', async () => {
    const seen: Headers[] = []
    const capture = async (_input: string | URL | Request, init?: RequestInit) => {
      seen.push(new Headers(init?.headers))
      return new Response('{}')
    }
    await sessionFetch(SESSION_ID, capture)('http://x/')
    await sessionFetch(SESSION_ID, capture, { baggage: true })('http://x/', {
      headers: { baggage: 'tenant=a, session.id=old' },
    })
    expect(seen[0]!.get('baggage')).toBeNull()
    expect(seen[1]!.get('baggage')).toBe(`tenant=a,session.id=${SESSION_ID}`)
    expect(seen[1]!.get('x-session-id')).toBe(SESSION_ID)
  })
})
