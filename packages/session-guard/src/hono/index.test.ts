import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { type Context, type Handler, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, expectTypeOf, it, vi } from 'vitest'
import { ACTIVE } from '../test-support/contract.js'
import {
  guardedJsonBody,
  type HonoSessionGuardOptions,
  requireJsonBody,
  SessionGuardException,
  type SessionGuardVariables,
  sessionErrorHandler,
  sessionGuard,
} from './index.js'

describe('Hono session guard', () => {
  it('types c.get("sessionId") through the guard\'s Variables, not globally', () => {
    const typed = new Hono<{ Variables: SessionGuardVariables }>()
    typed.get('/x', (c) => {
      expectTypeOf(c.get('sessionId')).toEqualTypeOf<string>()
      expectTypeOf(c.var.sessionId).toEqualTypeOf<string>()
      return c.text('ok')
    })
    const plain = new Hono()
    plain.get('/guarded', sessionGuard(), (c) => {
      expectTypeOf(c.get('sessionId')).toEqualTypeOf<string>()
      return c.text('ok')
    })
    plain.get('/unguarded', (c) => {
      // @ts-expect-error an unguarded route of an app that imports the guard has no sessionId
      c.get('sessionId')
      return c.text('ok')
    })
    plain.use(sessionGuard()).get('/chained', (c) => {
      expectTypeOf(c.var.sessionId).toEqualTypeOf<string>()
      return c.text('ok')
    })
  })

  it('answers a header-only request to a handler that needs a body with the shared JSON error', async () => {
    const app = new Hono()
    app.post('/x', sessionGuard(), async (c) =>
      c.json({ id: c.get('sessionId'), body: await requireJsonBody(c) }),
    )
    app.onError(sessionErrorHandler())
    const absent = await app.request('/x', { method: 'POST', headers: { 'x-session-id': ACTIVE } })
    expect(absent.status).toBe(400)
    expect(absent.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await absent.json()).toMatchObject({ error: 'malformed_json' })
    const present = await app.request('/x', {
      method: 'POST',
      headers: { 'x-session-id': ACTIVE, 'content-type': 'application/json' },
      body: '{"text":"hi"}',
    })
    expect(await present.json()).toEqual({ id: ACTIVE, body: { text: 'hi' } })
  })

  it('lets a handler that answers nothing fail as Hono reports it, not answer with the context', async () => {
    const forms: HonoSessionGuardOptions[] = [{}, { verify: () => true }]
    for (const options of forms) {
      const reported: string[] = []
      const app = new Hono()
      app.use(sessionGuard(options))
      // A forgotten `return`: the handler answers nothing (which Hono's types would not let through).
      const answersNothing = (c: Context) => {
        c.json({ ok: true })
      }
      app.get('/x', answersNothing as unknown as Handler)
      app.onError(sessionErrorHandler({ onUnexpected: (err) => reported.push(err.message) }))
      const res = await app.request('/x', { headers: { 'x-session-id': ACTIVE } })
      expect(res).toBeInstanceOf(Response)
      expect(res.status).toBe(500)
      expect(await res.json()).toEqual({ error: 'internal_error', message: 'Unexpected error.' })
      expect(reported).toEqual([expect.stringMatching(/Context is not finalized/)])
      const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
      })
      try {
        const { port } = server.address() as AddressInfo
        const overHttp = await fetch(`http://127.0.0.1:${port}/x`, { headers: { 'x-session-id': ACTIVE } })
        expect(overHttp.status).toBe(500)
        expect(await overHttp.json()).toMatchObject({ error: 'internal_error' })
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    }
  })

  it('renders unexpected errors as 500 internal_error JSON without details, reporting them', async () => {
    const reported: string[] = []
    const app = new Hono()
    app.get('/boom', () => {
      throw new Error('secret detail')
    })
    app.onError(sessionErrorHandler({ onUnexpected: (err) => reported.push(err.message) }))
    const res = await app.request('/boom')
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: 'internal_error', message: 'Unexpected error.' })
    expect(reported).toEqual(['secret detail'])
  })

  it('throws an HTTPException whose response onError can override', async () => {
    const app = new Hono()
    app.use(sessionGuard())
    app.get('/x', (c) => c.text('handler'))
    app.onError((err, c) => {
      expect(err).toBeInstanceOf(HTTPException)
      if (err instanceof SessionGuardException)
        return c.json({ ...err.body, hint: 'start a session' }, err.status)
      return c.text('other', 500)
    })
    const res = await app.request('/x')
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'session_id_missing', hint: 'start a session' })
  })

  it('answers with the shared JSON body when the app has no onError', async () => {
    const app = new Hono()
    app.use(sessionGuard())
    app.get('/x', (c) => c.text('handler'))
    const res = await app.request('/x', { headers: { 'x-session-id': 'bad' } })
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({ error: 'session_id_invalid' })
  })

  it('passes the Hono context to verify and leaves c.req.json() usable after it', async () => {
    const seen: string[] = []
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    app.use(
      sessionGuard({
        verify: (id, c) => {
          seen.push(`${c.req.method} ${c.req.path} ${id}`)
          return true
        },
      }),
    )
    app.post('/x', async (c) => c.json({ id: c.get('sessionId'), body: await c.req.json() }))
    const res = await app.request('/x', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: ACTIVE, text: 'hi' }),
    })
    expect(await res.json()).toEqual({ id: ACTIVE, body: { session_id: ACTIVE, text: 'hi' } })
    expect(seen).toEqual([`POST /x ${ACTIVE}`])
  })

  it('parses a guarded body once and hands that value to the handler', async () => {
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    const seen: unknown[] = []
    app.post('/x', sessionGuard(), async (c) => {
      seen.push(guardedJsonBody(c), await c.req.json())
      return c.json({ id: c.get('sessionId') })
    })
    const parse = vi.spyOn(JSON, 'parse')
    try {
      const res = await app.request('/x', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': ACTIVE },
        body: JSON.stringify({ session_id: ACTIVE, text: 'hi' }),
      })
      expect(res.status).toBe(200)
      expect(parse).toHaveBeenCalledTimes(1)
    } finally {
      parse.mockRestore()
    }
    expect(seen[0]).toEqual({ session_id: ACTIVE, text: 'hi' })
    expect(seen[1]).toBe(seen[0])
  })

  it('has no guarded body for a request without a JSON body', async () => {
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    app.post('/x', sessionGuard(), (c) => c.json({ body: guardedJsonBody(c) ?? null }))
    const res = await app.request('/x', { method: 'POST', headers: { 'x-session-id': ACTIVE } })
    expect(await res.json()).toEqual({ body: null })
  })

  it('reuses a body an earlier middleware already parsed', async () => {
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    app.use(async (c, next) => {
      await c.req.json()
      await next()
    })
    app.use(sessionGuard())
    app.post('/x', async (c) => c.json({ id: c.get('sessionId'), body: await c.req.json() }))
    const res = await app.request('/x', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: ACTIVE }),
    })
    expect(await res.json()).toEqual({ id: ACTIVE, body: { session_id: ACTIVE } })
  })

  it('under @hono/node-server parses the body once, for two guards and a handler that reads it twice', async () => {
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    app.use(sessionGuard())
    app.post('/x', sessionGuard({ sources: ['body'] }), async (c) => {
      const first = await c.req.json()
      const second = await c.req.json()
      return c.json({
        same: first === second && first === guardedJsonBody(c),
        body: first,
        text: await c.req.text(),
      })
    })
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
    })
    const { port } = server.address() as AddressInfo
    const sent = JSON.stringify({ session_id: ACTIVE, text: 'hi' })
    const parse = vi.spyOn(JSON, 'parse')
    let res: Response
    try {
      res = await fetch(`http://127.0.0.1:${port}/x`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': ACTIVE },
        body: sent,
      })
      expect(res.status).toBe(200)
      // Other code in this process parses its own JSON; the body itself is parsed exactly once.
      expect(parse.mock.calls.filter(([text]) => text === sent)).toHaveLength(1)
    } finally {
      parse.mockRestore()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    expect(await res.json()).toEqual({ same: true, body: { session_id: ACTIVE, text: 'hi' }, text: sent })
  })

  it('under @hono/node-server takes a body that arrived before the guard at once: parsed once, limit and conflict kept', async () => {
    const app = new Hono<{ Variables: SessionGuardVariables }>()
    const complete: boolean[] = []
    // An async middleware in front (auth, rate limiting) lets the whole body arrive first.
    app.use(async (c, next) => {
      const incoming = (c.env as { incoming: { complete: boolean } }).incoming
      for (let i = 0; i < 100 && !incoming.complete; i++) await new Promise((r) => setTimeout(r, 5))
      complete.push(incoming.complete)
      await next()
    })
    app.post('/x', sessionGuard({ maxBodyBytes: 64 }), async (c) =>
      c.json({ id: c.get('sessionId'), body: await c.req.json(), text: await c.req.text() }),
    )
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
    })
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`
    const post = (body: string, id = ACTIVE) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': id },
        body,
      })
    const sent = JSON.stringify({ text: 'hi' })
    const parse = vi.spyOn(JSON, 'parse')
    try {
      const ok = await post(sent)
      expect(ok.status).toBe(200)
      expect(parse.mock.calls.filter(([text]) => text === sent)).toHaveLength(1)
      expect(await ok.json()).toEqual({ id: ACTIVE, body: { text: 'hi' }, text: sent })
      const conflict = await post(JSON.stringify({ session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P9' }))
      expect(conflict.status).toBe(400)
      expect(await conflict.json()).toMatchObject({ error: 'session_id_conflict' })
      const large = await post(JSON.stringify({ pad: 'x'.repeat(100) }))
      expect(large.status).toBe(413)
      const malformed = await post('{"text":')
      expect(await malformed.json()).toMatchObject({ error: 'malformed_json' })
    } finally {
      parse.mockRestore()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    expect(complete).toEqual([true, true, true, true])
  })

  it('answers a refused request with a rejected promise, never a synchronous throw', async () => {
    const guard = sessionGuard()
    const c = {
      req: { path: '/x', method: 'GET', url: 'http://x/x', header: () => undefined },
      env: undefined,
    } as unknown as Parameters<typeof guard>[0]
    const next = vi.fn(async () => {})
    let result: Promise<unknown> | undefined
    expect(() => {
      result = guard(c, next) as Promise<unknown>
    }).not.toThrow()
    await expect(result).rejects.toBeInstanceOf(SessionGuardException)
    await expect(result).rejects.toMatchObject({ status: 400, body: { error: 'session_id_missing' } })
    expect(next).not.toHaveBeenCalled()
  })
})
