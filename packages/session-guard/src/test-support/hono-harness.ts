import type { AddressInfo } from 'node:net'
import { errorResponse } from '@care/schemas'
import { serve } from '@hono/node-server'
import { serve as serveWithNodeServer1 } from '@hono/node-server-1'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { guarded, type SessionGuardOptions, type SessionGuardVariables, sessionGuard } from '../hono/index.js'
import { type ContractRequest, type StartHarness, sendContractRequest } from './contract.js'

/**
 * How the guard is wired: `sessionGuard()` as app-wide middleware in front of the route, or
 * `guarded(handler)` as the route's one handler (Hono's single-handler path).
 */
export type HonoGuardForm = 'middleware' | 'handler'

function contractApp(options: SessionGuardOptions<unknown>, form: HonoGuardForm) {
  const app = new Hono<{ Variables: SessionGuardVariables }>()
  let calls = 0
  const echo = async (c: Context<{ Variables: SessionGuardVariables }>) => {
    calls += 1
    const isJson = c.req.header('content-type')?.startsWith('application/json') ?? false
    const text = isJson ? await c.req.text() : ''
    return c.json({ session_id: c.get('sessionId') ?? null, body: text === '' ? null : JSON.parse(text) })
  }
  if (form === 'middleware') {
    app.use(sessionGuard(options))
    app.all('*', echo)
  } else {
    app.all('*', guarded(echo, options))
  }
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    const { status, body } = errorResponse('internal_error')
    return c.json(body, status)
  })
  return { app, calls: () => calls }
}

/** A Hono app reached through `app.request()`, with no server, as Hono's own tests do. */
export function honoHarness(form: HonoGuardForm = 'middleware'): StartHarness {
  return async (options) => {
    const { app, calls } = contractApp(options, form)
    return {
      request: (request: ContractRequest) => sendContractRequest(app.request, 'http://localhost', request),
      handlerCalls: calls,
      close: async () => {},
    }
  }
}

/**
 * The same app served by `@hono/node-server` on 127.0.0.1:0: there the guard reads the raw
 * IncomingMessage (`c.env.incoming`) instead of the Fetch API view, so that path needs the table too.
 * Run with 2.x (what a fresh consumer installs) and 1.x (what existing apps run).
 */
export function honoNodeServerHarness(major: 1 | 2, form: HonoGuardForm = 'middleware'): StartHarness {
  const serveWith = major === 2 ? serve : serveWithNodeServer1
  return async (options) => {
    const { app, calls } = contractApp(options, form)
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serveWith({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () =>
        resolve(started as ReturnType<typeof serve>),
      )
    })
    const { port } = server.address() as AddressInfo
    return {
      request: (request: ContractRequest) => sendContractRequest(fetch, `http://127.0.0.1:${port}`, request),
      handlerCalls: calls,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    }
  }
}
