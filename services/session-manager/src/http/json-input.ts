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
 * @example
 * app.post('/sessions.start', validJson(validateSessionManagerStartInput), handler)
 */
export function validJson<T>(validator: RecordValidator<T>): MiddlewareHandler<SessionManagerEnv> {
  return async function validateJsonBody(c, next) {
    const parsed = parseJsonBody(await c.req.text())
    if (!parsed.ok) return sendError(c, parsed.error, { message: parsed.message })
    const result = validator.validate(parsed.value)
    if (!result.ok) return sendError(c, 'validation_failed', { fields: result.fields })
    c.set('input', result.value)
    await next()
  }
}
