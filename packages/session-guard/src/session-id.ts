import { ULID_PATTERN } from '@care/schemas'

/**
 * The HTTP header that carries a CARE `session_id` between services (lower case, as Node and
 * the Fetch API report header names).
 *
 * @example
 * await fetch(workerUrl, { headers: { [SESSION_ID_HEADER]: sessionId } })
 */
export const SESSION_ID_HEADER = 'x-session-id'

/**
 * The JSON body field and query parameter that carry a `session_id`, matching the CARE records.
 *
 * @example
 * const url = `${workerUrl}?${SESSION_ID_FIELD}=${sessionId}`
 */
export const SESSION_ID_FIELD = 'session_id'

const ULID = new RegExp(ULID_PATTERN)

/**
 * True when `value` is a ULID as CARE issues them (26 upper-case Crockford base32 characters).
 *
 * @example
 * if (!isSessionId(stored)) throw new Error('corrupt session id in storage')
 */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && ULID.test(value)
}

/** Anything whose headers can be read by name: Fetch `Headers` or Node's `IncomingHttpHeaders`. */
export type HeaderCarrier = Headers | Readonly<Record<string, string | readonly string[] | undefined>>

/**
 * Reads the `x-session-id` header. Never throws and never judges the value: duplicate headers
 * come back joined by `, ` (as Node and Fetch join them), which the guard then rejects as invalid.
 *
 * @example
 * const raw = extractSessionIdFromHeaders(req.headers) // string | undefined
 */
export function extractSessionIdFromHeaders(headers: HeaderCarrier): string | undefined {
  if (isFetchHeaders(headers)) return headers.get(SESSION_ID_HEADER) ?? undefined
  const value = headers[SESSION_ID_HEADER]
  if (value === undefined) return undefined
  return typeof value === 'string' ? value : value.join(', ')
}

/**
 * Reads the `session_id` query parameter from a URL or a request target such as `/infer?session_id=...`.
 * Never throws. A parameter given several times comes back joined by `, `, like a repeated header,
 * so an ambiguous request cannot pass the guard.
 *
 * @example
 * const raw = extractSessionIdFromQuery(c.req.url) // string | undefined
 */
export function extractSessionIdFromQuery(url: string): string | undefined {
  const start = url.indexOf('?')
  if (start === -1) return undefined
  const end = url.indexOf('#', start)
  const search = end === -1 ? url.slice(start + 1) : url.slice(start + 1, end)
  // Fast path; a name may also be percent-encoded (`session%5Fid`), as query parsers decode it.
  if (!search.includes(SESSION_ID_FIELD) && !search.includes('%')) return undefined
  const values = new URLSearchParams(search).getAll(SESSION_ID_FIELD)
  if (values.length === 0) return undefined
  return values.length === 1 ? values[0] : values.join(', ')
}

/**
 * Reads the `session_id` field of an already parsed JSON body. Never throws. Anything that is not
 * an object yields `undefined`; a field that is present but not a string yields a description of it
 * (e.g. `"123"`, `"null"`) so the guard reports it as invalid rather than missing.
 *
 * @example
 * const raw = extractSessionIdFromBody(req.body) // string | undefined
 */
export function extractSessionIdFromBody(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  if (!Object.hasOwn(body, SESSION_ID_FIELD)) return undefined
  const value: unknown = (body as Record<string, unknown>)[SESSION_ID_FIELD]
  if (typeof value === 'string') return value
  if (value === undefined) return undefined
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value)
  return `[${Array.isArray(value) ? 'array' : typeof value}]`
}

/** The raw values found in each source the guard was told to read; absent means not found there. */
export interface SessionIdSources {
  header?: string | undefined
  body?: string | undefined
  query?: string | undefined
}

/** Why a request's session id was refused; each is a code of `ERROR_CODES` with status 400. */
export type SessionIdRejection = 'session_id_missing' | 'session_id_invalid' | 'session_id_conflict'

/** The guard's verdict on the raw values: the accepted id, or the code to reject with. */
export type SessionIdDecision = { ok: true; id: string } | { ok: false; code: SessionIdRejection }

/**
 * The one policy both adapters apply: an empty value counts as absent; no value is
 * `session_id_missing`; two different values are `session_id_conflict` (compared exactly, before
 * validation, so the client learns about the disagreement first); one value that is not a ULID is
 * `session_id_invalid`. Pure and synchronous.
 *
 * @example
 * const decision = decideSessionId({ header: req.headers['x-session-id'], query: undefined })
 * if (!decision.ok) return reject(decision.code)
 */
export function decideSessionId(sources: SessionIdSources): SessionIdDecision {
  let found: string | undefined
  for (const value of [sources.header, sources.body, sources.query]) {
    if (value === undefined || value === '') continue
    if (found === undefined) found = value
    else if (found !== value) return { ok: false, code: 'session_id_conflict' }
  }
  if (found === undefined) return { ok: false, code: 'session_id_missing' }
  return ULID.test(found) ? { ok: true, id: found } : { ok: false, code: 'session_id_invalid' }
}

function isFetchHeaders(headers: HeaderCarrier): headers is Headers {
  return typeof (headers as Headers).get === 'function'
}
