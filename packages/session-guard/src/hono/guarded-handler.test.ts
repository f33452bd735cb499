import { createHook } from 'node:async_hooks'
import { type Env, Hono } from 'hono'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { ACTIVE, OTHER } from '../test-support/contract.js'
import { guarded, guardedJsonBody, SessionGuardException, sessionGuard } from './index.js'

// The contract table (contract.test.ts) runs against `guarded(handler)` as against the middleware;
// what is here is what only the handler form has: its types, and that it keeps Hono's
// single-handler path (no middleware `compose`), counted as promises per request.

/** Promises created (async_hooks) while `requests` requests are answered one after another. */
async function promisesPerRequest(app: Hono, init: () => RequestInit, requests = 50): Promise<number> {
  for (let i = 0; i < 5; i++) expect((await app.request('/work', init())).status).toBe(200) // warm-up
  let promises = 0
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises += 1
    },
  })
  let ok = 0
  hook.enable()
  try {
    for (let i = 0; i < requests; i++) if ((await app.request('/work', init())).status === 200) ok += 1
  } finally {
    hook.disable()
  }
  expect(ok).toBe(requests)
  return promises / requests
}

const headerGet = () => ({ headers: { 'x-session-id': ACTIVE } })
const bodyPost = () => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ session_id: ACTIVE, n: 1 }),
})

describe('guarded(handler): the Hono guard as a route handler', () => {
  it('types c.get("sessionId") as a string in the handler, and route params given the path', () => {
    const app = new Hono()
    app.get(
      '/notes',
      guarded((c) => {
        expectTypeOf(c.get('sessionId')).toEqualTypeOf<string>()
        expectTypeOf(c.var.sessionId).toEqualTypeOf<string>()
        return c.text('ok')
      }),
    )
    // Hono does not pass a route's path into a handler built by a call, so the path is a type argument.
    app.get(
      '/notes/:noteId',
      guarded<Env, '/notes/:noteId'>((c) => {
        expectTypeOf(c.req.param('noteId')).toEqualTypeOf<string>()
        expectTypeOf(c.get('sessionId')).toEqualTypeOf<string>()
        return c.text('ok')
      }),
    )
  })

  it('answers a refusal with the shared JSON error through Hono’s default handler when the app has no onError', async () => {
    const app = new Hono()
    let calls = 0
    app.get(
      '/work',
      guarded((c) => {
        calls += 1
        return c.text(c.get('sessionId'))
      }),
    )
    const missing = await app.request('/work')
    expect(missing.status).toBe(400)
    expect(missing.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await missing.json()).toMatchObject({ error: 'session_id_missing' })
    const accepted = await app.request('/work', headerGet())
    expect(accepted.status).toBe(200)
    expect(await accepted.text()).toBe(ACTIVE)
    expect(calls).toBe(1)
  })

  it('hands SessionGuardException to the app’s onError, which can reshape it', async () => {
    const app = new Hono()
    app.post(
      '/work',
      guarded((c) => c.text('handler ran')),
    )
    app.onError((err, c) => {
      if (err instanceof SessionGuardException) return c.json({ ...err.body, hint: 'reshaped' }, err.status)
      return c.json({ error: 'internal_error' }, 500)
    })
    const conflict = await app.request('/work', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': OTHER },
      body: JSON.stringify({ session_id: ACTIVE }),
    })
    expect(conflict.status).toBe(400)
    expect(await conflict.json()).toMatchObject({ error: 'session_id_conflict', hint: 'reshaped' })
  })

  it('parses the body once: c.req.json() in the handler returns the very value guardedJsonBody(c) holds', async () => {
    const app = new Hono()
    app.post(
      '/work',
      guarded(async (c) => {
        const body = guardedJsonBody(c)
        return c.json({ same: body !== undefined && (await c.req.json()) === body, body })
      }),
    )
    const res = await app.request('/work', bodyPost())
    expect(await res.json()).toEqual({ same: true, body: { session_id: ACTIVE, n: 1 } })
  })

  it('creates no promise of its own on an accepted header request, as many as the unguarded route, and fewer than the middleware form', async () => {
    const handler = async (c: { json: (v: unknown) => Response }) => c.json({ ok: true })
    const unguarded = new Hono().get('/work', handler)
    const handlerForm = new Hono().get('/work', guarded(handler))
    const middlewareForm = new Hono().get('/work', sessionGuard(), handler)
    const bare = await promisesPerRequest(unguarded, headerGet)
    const asHandler = await promisesPerRequest(handlerForm, headerGet)
    const asMiddleware = await promisesPerRequest(middlewareForm, headerGet)
    expect(asHandler).toBe(bare)
    expect(asMiddleware).toBeGreaterThan(asHandler)
  })

  it('creates fewer promises than the middleware form on a request whose id is in the JSON body', async () => {
    const handler = async (c: { json: (v: unknown) => Response; req: { json: () => Promise<unknown> } }) =>
      c.json(await c.req.json())
    const handlerForm = new Hono().post('/work', guarded(handler))
    const middlewareForm = new Hono().post('/work', sessionGuard(), handler)
    const asHandler = await promisesPerRequest(handlerForm, bodyPost)
    const asMiddleware = await promisesPerRequest(middlewareForm, bodyPost)
    expect(asMiddleware).toBeGreaterThan(asHandler)
  })
})
