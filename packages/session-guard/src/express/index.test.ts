import type { AddressInfo } from 'node:net'
import express, { type Request } from 'express'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { ACTIVE } from '../test-support/contract.js'
import { requireSessionId, SessionGuardError, sessionErrorHandler, sessionGuard } from './index.js'

const servers: { close(): void; closeAllConnections(): void }[] = []
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    server.close()
  }
})

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise<void>((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('Express session guard', () => {
  it('types req.sessionId on every Express request and requireSessionId as string', () => {
    expectTypeOf<Request['sessionId']>().toEqualTypeOf<string | undefined>()
    expectTypeOf(requireSessionId).returns.toEqualTypeOf<string>()
    expectTypeOf(sessionGuard).returns.toEqualTypeOf<express.RequestHandler>()
  })

  it('reads a body that fully arrived while an earlier async middleware ran', async () => {
    const app = express()
    const seenBeforeGuard: { complete: boolean; consumed: boolean }[] = []
    app.use(async (req, _res, next) => {
      // e.g. an auth or rate-limit lookup that lasts until node has parsed the whole body (bounded)
      const deadline = Date.now() + 5_000
      while (!req.complete && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1))
      seenBeforeGuard.push({ complete: req.complete, consumed: req.readableEnded })
      next()
    })
    app.post('/x', sessionGuard(), (req, res) => {
      res.json({ id: requireSessionId(req), body: req.body })
    })
    const url = await listen(app)
    const res = await fetch(`${url}/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: ACTIVE, text: 'hi' }),
    })
    // The path under test: the body had fully arrived, unread, before the guard ran.
    expect(seenBeforeGuard).toEqual([{ complete: true, consumed: false }])
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ id: ACTIVE, body: { session_id: ACTIVE, text: 'hi' } })
  })

  it('passes the Express request to verify', async () => {
    const seen: string[] = []
    const app = express()
    app.get(
      '/x',
      sessionGuard({
        verify: (id, req) => {
          seen.push(`${req.method} ${req.path} ${id}`)
          return true
        },
      }),
      (req, res) => {
        res.json({ id: requireSessionId(req) })
      },
    )
    const url = await listen(app)
    const res = await fetch(`${url}/x`, { headers: { 'x-session-id': ACTIVE } })
    expect(await res.json()).toEqual({ id: ACTIVE })
    expect(seen).toEqual([`GET /x ${ACTIVE}`])
  })

  it('matches exempt paths against the full path when mounted under a prefix', async () => {
    const app = express()
    app.use('/api', sessionGuard({ exemptPaths: ['/api/healthz'] }))
    app.get('/api/healthz', (_req, res) => {
      res.json({ ok: true })
    })
    app.use(sessionErrorHandler())
    const url = await listen(app)
    expect((await fetch(`${url}/api/healthz`)).status).toBe(200)
  })

  it('renders unknown errors as 500 internal_error without leaking the message or stack', async () => {
    const unexpected: unknown[] = []
    const app = express()
    app.get('/boom', () => {
      throw new Error('secret database password in message')
    })
    app.use(sessionErrorHandler({ onUnexpected: (err) => unexpected.push(err) }))
    const url = await listen(app)
    const res = await fetch(`${url}/boom`)
    const text = await res.text()
    expect(res.status).toBe(500)
    expect(JSON.parse(text)).toEqual({ error: 'internal_error', message: 'Unexpected error.' })
    expect(text).not.toMatch(/secret|at /)
    expect(unexpected).toHaveLength(1)
  })

  it('renders an application error that carries status and a shared-shape body', async () => {
    const app = express()
    app.get('/gone', (_req, _res, next) => {
      next(new SessionGuardError({ status: 409, body: { error: 'session_ended', message: 'Ended.' } }))
    })
    app.get('/custom', (_req, _res, next) => {
      next(Object.assign(new Error('x'), { status: 503, body: { error: 'not_ready', message: 'Starting.' } }))
    })
    app.use(sessionErrorHandler())
    const url = await listen(app)
    expect((await fetch(`${url}/gone`)).status).toBe(409)
    const custom = await fetch(`${url}/custom`)
    expect([custom.status, await custom.json()]).toEqual([503, { error: 'not_ready', message: 'Starting.' }])
  })

  it('renders express.json() failures in the shared shape', async () => {
    const app = express()
    app.use(express.json({ limit: 64 }))
    app.post('/x', (_req, res) => {
      res.json({})
    })
    app.use(sessionErrorHandler())
    const url = await listen(app)
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${url}/x`, { method: 'POST', headers, body }).then(async (r) => [
        r.status,
        ((await r.json()) as { error: string }).error,
      ])
    expect(await post({ 'content-type': 'application/json' }, '{nope')).toEqual([400, 'malformed_json'])
    expect(
      await post({ 'content-type': 'application/json' }, JSON.stringify({ a: 'x'.repeat(100) })),
    ).toEqual([413, 'payload_too_large'])
    expect(await post({ 'content-type': 'application/json; charset=latin1' }, '{}')).toEqual([
      415,
      'unsupported_media_type',
    ])
  })

  it('rejects a compressed body it cannot read with 415', async () => {
    const app = express()
    app.post('/x', sessionGuard(), (_req, res) => {
      res.json({})
    })
    app.use(sessionErrorHandler())
    const url = await listen(app)
    const res = await fetch(`${url}/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-session-id': ACTIVE },
      body: 'not really gzip',
    })
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([
      415,
      'unsupported_media_type',
    ])
  })
})
