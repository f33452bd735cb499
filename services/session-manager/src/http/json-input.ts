import { parseJsonBody, type RecordValidator } from '@care/schemas'
import { unsupportedEncoding } from '@care/session-guard'
import { guardedJsonBody } from '@care/session-guard/hono'
import { readUnreadBody, unreadNodeRequest } from '@care/session-guard/node'
import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { sendError } from './errors.js'
import type { SessionManagerEnv } from './http-env.js'
import { nodeRequestOf, requestHeader } from './node-request.js'

const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i

/**
 * 415 unless the request declares an uncompressed JSON body: a `Content-Encoding` other than
 * `identity` gets the session guard's (and so the sample worker's) 415 answer, one rule for both.
 */
export const requireJsonContentType: MiddlewareHandler<SessionManagerEnv> = async function requireJson(
  c,
  next,
) {
  const encoded = unsupportedEncoding(requestHeader(c, 'content-encoding'))
  if (encoded) return c.json(encoded.body, encoded.status as ContentfulStatusCode)
  if (!JSON_CONTENT_TYPE.test(requestHeader(c, 'content-type') ?? ''))
    return sendError(c, 'unsupported_media_type')
  await next()
}

/**
 * 413 once the body exceeds `maxBytes`, whether declared by Content-Length or streamed chunked.
 *
 * Served by @hono/node-server, the body is read here once, straight from Node's request stream,
 * and left in Hono's body cache, so `c.req.text()` / `c.req.json()` (and the session guard) read
 * it from there: no Fetch `Request`, web stream or abort signal is built for it (they were a tenth
 * of the CPU of a durable start). Elsewhere (`app.request` in tests, other runtimes) Hono's own
 * `bodyLimit` does the same job on the Fetch request.
 */
export function limitBody(maxBytes: number): MiddlewareHandler<SessionManagerEnv> {
  const tooLarge = (c: Context<SessionManagerEnv>) =>
    sendError(c, 'payload_too_large', { message: `The request body exceeds ${maxBytes} bytes.` })
  const onFetchRequest = bodyLimit({ maxSize: maxBytes, onError: tooLarge })
  return async function limitAndReadBody(c, next) {
    const incoming = unreadNodeRequest(nodeRequestOf(c))
    const cache = bodyCacheOf(c)
    if (!incoming || !cache) return onFetchRequest(c, next)
    const declared = incoming.headers['content-length']
    if (declared !== undefined && incoming.headers['transfer-encoding'] === undefined) {
      if (Number(declared) > maxBytes) return tooLarge(c)
    }
    const text = await readUnreadBody(incoming, maxBytes)
    if (text === undefined) return tooLarge(c)
    cache.text = Promise.resolve(text)
    await next()
  }
}

type BodyCache = { text?: Promise<string> }

/** Hono's per-request body cache (4.x; the session guard relies on it the same way). */
function bodyCacheOf(c: Context<SessionManagerEnv>): BodyCache | undefined {
  const cache: unknown = (c.req as { bodyCache?: unknown }).bodyCache
  if (typeof cache !== 'object' || cache === null || Object.keys(cache).length > 0) return undefined
  return cache as BodyCache
}

/**
 * Parses the body as JSON (400 `malformed_json`; 400 `forbidden_key` for `__proto__`,
 * `constructor`, `prototype`) and validates it (400 `validation_failed` with the offending
 * fields). The valid value is available as `c.get('input')`.
 *
 * With `sessionIdFromGuard` (the guarded routes), a body without `session_id` takes the one the
 * session guard found (the `x-session-id` header or the query): one rule for touch and end, where
 * the header alone, the body alone or both (equal; different is the guard's 400
 * `session_id_conflict`) are accepted.
 *
 * @example
 * app.post('/sessions.start', validJson(validateSessionManagerStartInput), handler)
 */
export function validJson<T>(
  validator: RecordValidator<T>,
  { sessionIdFromGuard = false }: { sessionIdFromGuard?: boolean } = {},
): MiddlewareHandler<SessionManagerEnv> {
  return async function validateJsonBody(c, next) {
    // Behind the session guard the body was parsed (with the same checks) by the guard: not twice.
    let body = sessionIdFromGuard ? guardedJsonBody(c) : undefined
    if (body === undefined) {
      const parsed = parseJsonBody(await c.req.text())
      if (!parsed.ok) return sendError(c, parsed.error, { message: parsed.message })
      body = parsed.value
    }
    if (sessionIdFromGuard && isPlainObject(body) && !('session_id' in body) && c.get('sessionId')) {
      body.session_id = c.get('sessionId')
    }
    const result = validator.validate(body)
    if (!result.ok) return sendError(c, 'validation_failed', { fields: result.fields })
    c.set('input', result.value)
    await next()
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
