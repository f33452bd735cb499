import { isSessionId, SESSION_ID_HEADER } from './session-id.js'

function assertSessionId(sessionId: string): void {
  // Propagating garbage would only move the 400 to the next service; fail where the bug is.
  if (!isSessionId(sessionId)) throw new TypeError(`not a session id (ULID): ${JSON.stringify(sessionId)}`)
}

function injectInto(headers: Headers, sessionId: string): Headers {
  const existing = headers.get(SESSION_ID_HEADER)
  if (existing !== null && existing !== sessionId)
    throw new TypeError(`${SESSION_ID_HEADER} is already set to a different session (${existing})`)
  headers.set(SESSION_ID_HEADER, sessionId)
  return headers
}

/**
 * Adds the `x-session-id` header for an outgoing call, the injecting half of the propagation
 * contract. Given `Headers`, it sets the header on them and returns them; given a `RequestInit`
 * (or nothing), it returns a new `RequestInit` with copied headers and leaves the original
 * untouched. Throws a `TypeError` if `sessionId` is not a ULID or the headers already carry a
 * different session id.
 *
 * @example
 * await fetch(nextStepUrl, withSessionId({ method: 'POST', body }, req.sessionId))
 */
export function withSessionId(headers: Headers, sessionId: string): Headers
export function withSessionId(init: RequestInit | undefined, sessionId: string): RequestInit
export function withSessionId(
  target: Headers | RequestInit | undefined,
  sessionId: string,
): Headers | RequestInit {
  assertSessionId(sessionId)
  if (target instanceof Headers) return injectInto(target, sessionId)
  return { ...target, headers: injectInto(new Headers(target?.headers), sessionId) }
}

/** A `fetch` with the same call shape as the global one. */
export type SessionFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * Options of {@link sessionFetch}. `baggage: true` also adds `session.id=<id>` to the W3C `baggage`
 * header (kept alongside any entries already there), for services that only read baggage;
 * `x-session-id` stays the contract.
 *
 * @example
 * const options: SessionFetchOptions = { baggage: true }
 */
export interface SessionFetchOptions {
  baggage?: boolean
}

/** The W3C baggage header and the key the id travels under there. */
const BAGGAGE_HEADER = 'baggage'
const BAGGAGE_KEY = 'session.id'

function addBaggage(headers: Headers, sessionId: string): void {
  const entries = (headers.get(BAGGAGE_HEADER) ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '' && entry.split('=')[0]!.trim() !== BAGGAGE_KEY)
  headers.set(BAGGAGE_HEADER, [...entries, `${BAGGAGE_KEY}=${sessionId}`].join(','))
}

/**
 * Returns a `fetch` bound to one session id: every call it makes carries `x-session-id` (and, with
 * `{ baggage: true }`, a `session.id` W3C baggage entry). Bind it per request (never store it
 * globally: there is no "current session"). Headers of a `Request` passed as `input` are kept.
 *
 * @example
 * const fetchInSession = sessionFetch(req.sessionId)
 * const res = await fetchInSession(`${annotateUrl}`, { method: 'POST', body: JSON.stringify(payload) })
 */
export function sessionFetch(
  sessionId: string,
  fetchImpl: SessionFetch = globalThis.fetch,
  options: SessionFetchOptions = {},
): SessionFetch {
  assertSessionId(sessionId)
  return function fetchWithSessionId(input, init) {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
    injectInto(headers, sessionId)
    if (options.baggage) addBaggage(headers, sessionId)
    return fetchImpl(input, { ...init, headers })
  }
}
