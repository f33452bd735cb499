import { parseJsonBody } from '@care/schemas'
import { type GuardRejection, rejectWith } from './rejection.js'

/** How a request's `content-type` relates to the JSON body the guard may read. */
export type JsonContentKind = 'json' | 'json-unsupported-charset' | 'not-json'

/**
 * Classifies a `content-type` value: `application/json` and `application/*+json` are JSON; a JSON
 * type with a charset other than UTF-8 cannot be read as the JSON spec requires. Never throws.
 *
 * @example
 * if (classifyContentType(req.headers['content-type']) === 'json') readBody(req)
 */
export function classifyContentType(contentType: string | null | undefined): JsonContentKind {
  if (!contentType) return 'not-json'
  // What almost every client sends, answered without slicing or lower-casing a copy.
  if (contentType === 'application/json') return 'json'
  const semicolon = contentType.indexOf(';')
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
  const isJson =
    mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'))
  if (!isJson) return 'not-json'
  if (semicolon === -1) return 'json'
  const charset = /(?:^|;)\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType.slice(semicolon))?.[1]
  if (charset === undefined) return 'json'
  const normalized = charset.toLowerCase()
  return normalized === 'utf-8' || normalized === 'utf8' ? 'json' : 'json-unsupported-charset'
}

/**
 * Parses body text the guard read itself, with the same protections as every CARE service
 * (`parseJsonBody`: no `__proto__`-style keys, bounded depth). An empty body is "no body", as
 * `express.json()` treats it.
 *
 * @example
 * const parsed = parseGuardedBody(text)
 * if (!parsed.ok) return reject(parsed.rejection)
 */
export function parseGuardedBody(
  text: string,
): { ok: true; value: unknown } | { ok: false; rejection: GuardRejection } {
  const unmarked = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  if (isBlank(unmarked)) return NO_BODY
  const parsed = parseJsonBody(unmarked)
  if (parsed.ok) return parsed
  return { ok: false, rejection: rejectWith(parsed.error, parsed.message) }
}

const NO_BODY = Object.freeze({ ok: true, value: undefined }) satisfies { ok: true; value: unknown }

/**
 * True when `text` has nothing but whitespace (what `String.prototype.trim` removes), checked
 * without making a trimmed copy of the body: a JSON body's first character decides almost always.
 */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // JSON text starts with one of { [ " - 0-9 t f n: the common case ends here at once.
    if (code > 0x20 && code < 0x7f) return false
    if (!WHITESPACE.test(text[i]!)) return false
  }
  return true
}

const WHITESPACE = /^\s$/

/** The 413 answer for a body over the guard's limit. */
export function tooLarge(limit: number): GuardRejection {
  return rejectWith('payload_too_large', `The request body is larger than ${limit} bytes.`)
}

/** The 415 answer for a JSON body in a charset other than UTF-8. */
export function unsupportedCharset(): GuardRejection {
  return rejectWith('unsupported_media_type', 'A JSON request body must be encoded as UTF-8.')
}

/**
 * The 415 answer for a compressed body (`Content-Encoding` other than `identity`), which the guard
 * does not inflate; undefined when the body is not encoded. Both adapters decide with this one rule.
 *
 * @example
 * const rejection = unsupportedEncoding(req.headers['content-encoding'])
 * if (rejection) return reject(rejection)
 */
export function unsupportedEncoding(contentEncoding: string | null | undefined): GuardRejection | undefined {
  if (contentEncoding === undefined || contentEncoding === null) return undefined
  const encoding = contentEncoding.trim().toLowerCase()
  if (encoding === '' || encoding === 'identity') return undefined
  return rejectWith(
    'unsupported_media_type',
    `Content-Encoding "${encoding}" is not supported here; send the body uncompressed.`,
  )
}
