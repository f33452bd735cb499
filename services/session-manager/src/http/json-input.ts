import { parseJsonBody, type RecordValidator } from '@care/schemas'
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { sendError } from './errors.js'
import type { SessionManagerEnv } from './http-env.js'

const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i

/** 415 unless the request declares a JSON body. */
export const requireJsonContentType: MiddlewareHandler<SessionManagerEnv> = async function requireJson(
  c,
  next,
) {
  if (!JSON_CONTENT_TYPE.test(c.req.header('content-type') ?? ''))
    return sendError(c, 'unsupported_media_type')
  await next()
}

/** 413 once the body exceeds `maxBytes`, whether declared by Content-Length or streamed chunked. */
export function limitBody(maxBytes: number): MiddlewareHandler<SessionManagerEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) =>
      sendError(c, 'payload_too_large', { message: `The request body exceeds ${maxBytes} bytes.` }),
  })
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
    const parsed = parseJsonBody(await c.req.text())
    if (!parsed.ok) return sendError(c, parsed.error, { message: parsed.message })
    const body = parsed.value
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
