import { errorResponse } from '@care/schemas'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { type SessionGuardVariables, sessionGuard } from '../hono/index.js'
import { type ContractRequest, chunkedBody, type StartHarness } from './contract.js'

/** A Hono app reached through `app.request()`, with no server, as Hono's own tests do. */
export const honoHarness: StartHarness = async (options) => {
  const app = new Hono<{ Variables: SessionGuardVariables }>()
  let calls = 0
  app.use(sessionGuard(options))
  app.all('*', async (c) => {
    calls += 1
    const isJson = c.req.header('content-type')?.startsWith('application/json') ?? false
    const text = isJson ? await c.req.text() : ''
    return c.json({ session_id: c.get('sessionId') ?? null, body: text === '' ? null : JSON.parse(text) })
  })
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    const { status, body } = errorResponse('internal_error')
    return c.json(body, status)
  })
  return {
    async request(request: ContractRequest) {
      const init: RequestInit & { duplex?: 'half' } = {
        method: request.method,
        headers: request.headers ?? {},
      }
      if (request.body !== undefined) {
        init.body = request.chunked ? chunkedBody(request.body) : request.body
        if (request.chunked) init.duplex = 'half'
      }
      const res = await app.request(`http://localhost${request.path}`, init)
      const text = await res.text()
      return { status: res.status, contentType: res.headers.get('content-type'), json: JSON.parse(text) }
    },
    handlerCalls: () => calls,
    close: async () => {},
  }
}
