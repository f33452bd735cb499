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

/**
 * Which character codes may appear in a ULID after its first character (Crockford base32, upper
 * case: digits and A–Z without I, L, O and U); the first is 0–7, so that the id fits 128 bits.
 * Kept in step with `ULID_PATTERN` of `@care/schemas` (a test checks both agree).
 */
const ULID_CHAR = (() => {
  const table = new Uint8Array(128)
  for (const c of '0123456789ABCDEFGHJKMNPQRSTVWXYZ') table[c.charCodeAt(0)] = 1
  return table
})()

/** The ULID check without a RegExp or any allocation: 26 characters, each looked up in a table. */
function isUlid(value: string): boolean {
  if (value.length !== 26) return false
  const first = value.charCodeAt(0)
  if (first < 0x30 || first > 0x37) return false
  for (let i = 1; i < 26; i++) {
    const code = value.charCodeAt(i)
    if (code >= 128 || ULID_CHAR[code] === 0) return false
  }
  return true
}

/**
 * True when `value` is a ULID as CARE issues them (26 upper-case Crockford base32 characters, the
 * first 0–7, as `ULID_PATTERN` of `@care/schemas` says).
 *
 * @example
 * if (!isSessionId(stored)) throw new Error('corrupt session id in storage')
 */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && isUlid(value)
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
  const decided = decideFromValues(sources.header, sources.body, sources.query)
  return typeof decided === 'string' ? { ok: true, id: decided } : { ok: false, code: decided.code }
}

/** A refusal as {@link decideSessionId} reports it; one frozen object per code, shared. */
export type SessionIdRefusal = Readonly<{ ok: false; code: SessionIdRejection }>

const REFUSED: Readonly<Record<SessionIdRejection, SessionIdRefusal>> = Object.freeze({
  session_id_missing: Object.freeze({ ok: false, code: 'session_id_missing' }),
  session_id_invalid: Object.freeze({ ok: false, code: 'session_id_invalid' }),
  session_id_conflict: Object.freeze({ ok: false, code: 'session_id_conflict' }),
})

/**
 * The policy of {@link decideSessionId} for the adapters' hot path: the raw values as arguments (no
 * sources object, no array) and the accepted id itself as the answer (no result object), else a
 * shared refusal. One rule, one place: `decideSessionId` is this with its result wrapped.
 *
 * @example
 * const decided = decideFromValues(req.headers['x-session-id'], undefined, undefined)
 * if (typeof decided !== 'string') return reject(decided.code)
 */
export function decideFromValues(
  header: string | undefined,
  body: string | undefined,
  query: string | undefined,
): string | SessionIdRefusal {
  let found = header === '' ? undefined : header
  if (body !== undefined && body !== '') {
    if (found === undefined) found = body
    else if (found !== body) return REFUSED.session_id_conflict
  }
  if (query !== undefined && query !== '') {
    if (found === undefined) found = query
    else if (found !== query) return REFUSED.session_id_conflict
  }
  if (found === undefined) return REFUSED.session_id_missing
  return isUlid(found) ? found : REFUSED.session_id_invalid
}

function isFetchHeaders(headers: HeaderCarrier): headers is Headers {
  return typeof (headers as Headers).get === 'function'
}
