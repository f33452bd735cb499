import { gzipSync } from 'node:zlib'
import type { SessionGuardOptions } from '../options.js'

/** Ids used across the table: ACTIVE passes `verify`, UNKNOWN and ENDED do not. */
export const ACTIVE = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
export const OTHER = '01JNC3G8Z9X7W6V5T4S3R2Q1P9'
export const UNKNOWN = '01JNC3G8Z9X7W6V5T4S3R2Q1PA'
export const ENDED = '01JNC3G8Z9X7W6V5T4S3R2Q1PB'

export interface ContractRequest {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
  /** Send the body as a stream of chunks with no content-length (transfer-encoding: chunked). */
  chunked?: boolean
  /** Send the body gzip-compressed with `content-encoding: gzip`. */
  gzip?: boolean
}

/** What the app behind the guard reports: the id it was given and the body it could still read. */
export interface HandlerEcho {
  session_id: string | null
  body: unknown
}

export interface ContractResponse {
  status: number
  contentType: string | null
  json: unknown
}

/** One framework wired the same way: guard on every path, then a handler that echoes. */
export interface GuardHarness {
  request(request: ContractRequest): Promise<ContractResponse>
  /** How many times the handler behind the guard ran. */
  handlerCalls(): number
  close(): Promise<void>
}

export type StartHarness = (options: SessionGuardOptions<unknown>) => Promise<GuardHarness>

export interface ContractCase {
  name: string
  options?: SessionGuardOptions<unknown>
  request: ContractRequest
  expected: ContractExpectation
  /**
   * What an app whose own body parser ran before the guard answers, when that differs: the app chose
   * the parser's behaviour (`express.json()` inflates gzip), the guard only sees the parsed body.
   */
  whenAppParsedFirst?: ContractExpectation
}

export type ContractExpectation =
  | { status: 200; echo: Partial<HandlerEcho> }
  | { status: number; error: string }

const json = { 'content-type': 'application/json' }
const verifyKnown: SessionGuardOptions<unknown>['verify'] = (id) =>
  id === UNKNOWN ? 'session_not_found' : id === ENDED ? 'session_ended' : true

/**
 * The behaviour every adapter must show, whatever the framework. Each adapter's test runs this one
 * table; the adapters differ only in how a request reaches them.
 */
export const CONTRACT_CASES: readonly ContractCase[] = [
  {
    name: 'accepts a valid id in the x-session-id header',
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ACTIVE } },
    expected: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'accepts a valid id in the JSON body and leaves the body readable by the handler',
    request: {
      method: 'POST',
      path: '/work',
      headers: json,
      body: JSON.stringify({ session_id: ACTIVE, n: 1 }),
    },
    expected: { status: 200, echo: { session_id: ACTIVE, body: { session_id: ACTIVE, n: 1 } } },
  },
  {
    name: 'accepts a valid id in a chunked JSON body and leaves it readable by the handler',
    request: {
      method: 'POST',
      path: '/work',
      headers: json,
      body: JSON.stringify({ session_id: ACTIVE }),
      chunked: true,
    },
    expected: { status: 200, echo: { session_id: ACTIVE, body: { session_id: ACTIVE } } },
  },
  {
    name: 'accepts a valid id in the session_id query parameter',
    request: { method: 'GET', path: `/work?session_id=${ACTIVE}` },
    expected: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'accepts the same id given in header, body and query',
    request: {
      method: 'POST',
      path: `/work?session_id=${ACTIVE}`,
      headers: { ...json, 'x-session-id': ACTIVE },
      body: JSON.stringify({ session_id: ACTIVE }),
    },
    expected: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'accepts a header id when the JSON body is empty',
    request: { method: 'POST', path: '/work', headers: { ...json, 'x-session-id': ACTIVE }, body: '' },
    expected: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'returns 400 session_id_missing when a JSON body has no session_id',
    request: { method: 'POST', path: '/work', headers: json, body: JSON.stringify({ text: 'hi' }) },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'returns 400 session_id_missing for a GET without header or query',
    request: { method: 'GET', path: '/work?other=1' },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'treats an empty x-session-id header as missing',
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': '' } },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'returns 400 session_id_conflict when header and body disagree',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: JSON.stringify({ session_id: OTHER }),
    },
    expected: { status: 400, error: 'session_id_conflict' },
  },
  {
    name: 'returns 400 session_id_conflict when the body spells the key with a \\u escape',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: `{"text":"hi","session\\u005fid":"${OTHER}"}`,
    },
    expected: { status: 400, error: 'session_id_conflict' },
  },
  {
    name: 'returns 400 forbidden_key for a reserved key in the body even when the id is in the header',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: '{"text":"hi","__proto__":{"admin":true}}',
    },
    expected: { status: 400, error: 'forbidden_key' },
    // The app's own parser ran first and accepted it: the guard does not re-check a parsed body.
    whenAppParsedFirst: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'returns 400 session_id_conflict when header and query disagree',
    request: { method: 'GET', path: `/work?session_id=${OTHER}`, headers: { 'x-session-id': ACTIVE } },
    expected: { status: 400, error: 'session_id_conflict' },
  },
  {
    name: 'returns 400 malformed_json for a body that is not valid JSON',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: '{"session_id":',
    },
    expected: { status: 400, error: 'malformed_json' },
  },
  {
    name: 'returns 400 session_id_invalid for a lower-case ULID',
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ACTIVE.toLowerCase() } },
    expected: { status: 400, error: 'session_id_invalid' },
  },
  {
    name: 'returns 400 session_id_invalid for a 25-character id',
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ACTIVE.slice(1) } },
    expected: { status: 400, error: 'session_id_invalid' },
  },
  {
    name: 'returns 400 session_id_invalid for a 27-character id',
    request: { method: 'GET', path: `/work?session_id=${ACTIVE}0` },
    expected: { status: 400, error: 'session_id_invalid' },
  },
  {
    name: 'returns 400 session_id_invalid when the body field is not a string',
    request: { method: 'POST', path: '/work', headers: json, body: '{"session_id":12345}' },
    expected: { status: 400, error: 'session_id_invalid' },
  },
  {
    name: 'returns 400 session_id_invalid when the query parameter is repeated',
    request: { method: 'GET', path: `/work?session_id=${ACTIVE}&session_id=${OTHER}` },
    expected: { status: 400, error: 'session_id_invalid' },
  },
  {
    name: 'does not read a session_id from a body that is not JSON',
    request: {
      method: 'POST',
      path: '/work',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ session_id: ACTIVE }),
    },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'returns 413 payload_too_large for a JSON body over the limit',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: JSON.stringify({ pad: 'x'.repeat(20_000) }),
    },
    expected: { status: 413, error: 'payload_too_large' },
  },
  {
    name: 'returns 413 payload_too_large for a chunked JSON body over the limit',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: JSON.stringify({ pad: 'x'.repeat(20_000) }),
      chunked: true,
    },
    expected: { status: 413, error: 'payload_too_large' },
  },
  {
    name: 'returns 415 unsupported_media_type for a JSON body that is not UTF-8',
    request: {
      method: 'POST',
      path: '/work',
      headers: { 'content-type': 'application/json; charset=latin1', 'x-session-id': ACTIVE },
      body: '{}',
    },
    expected: { status: 415, error: 'unsupported_media_type' },
  },
  {
    name: 'returns 415 unsupported_media_type for a gzip-compressed JSON body (Content-Encoding)',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json },
      body: JSON.stringify({ session_id: ACTIVE }),
      gzip: true,
    },
    expected: { status: 415, error: 'unsupported_media_type' },
    whenAppParsedFirst: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'returns 415 for a compressed body even when the id is in the header',
    request: {
      method: 'POST',
      path: '/work',
      headers: { ...json, 'x-session-id': ACTIVE },
      body: JSON.stringify({ text: 'hi' }),
      gzip: true,
    },
    expected: { status: 415, error: 'unsupported_media_type' },
    whenAppParsedFirst: { status: 200, echo: { session_id: ACTIVE, body: { text: 'hi' } } },
  },
  {
    name: 'lets an exempt path through without an id',
    options: { exemptPaths: ['/healthz', /^\/public\//] },
    request: { method: 'GET', path: '/healthz?probe=1' },
    expected: { status: 200, echo: { session_id: null } },
  },
  {
    name: 'lets a path matching an exempt pattern through without an id',
    options: { exemptPaths: ['/healthz', /^\/public\//] },
    request: { method: 'GET', path: '/public/logo' },
    expected: { status: 200, echo: { session_id: null } },
  },
  {
    name: 'still guards a path that only starts like an exempt path',
    options: { exemptPaths: ['/healthz'] },
    request: { method: 'GET', path: '/healthz/deep' },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'ignores a source that is not enabled',
    options: { sources: ['header'] },
    request: { method: 'GET', path: `/work?session_id=${ACTIVE}` },
    expected: { status: 400, error: 'session_id_missing' },
  },
  {
    name: 'returns 404 session_not_found when verify rejects an unknown id',
    options: { verify: verifyKnown },
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': UNKNOWN } },
    expected: { status: 404, error: 'session_not_found' },
  },
  {
    name: 'returns 409 session_ended when verify says the session ended',
    options: {
      verify: async (id) => (id === ENDED ? { code: 'session_ended', details: { reason: 'timeout' } } : true),
    },
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ENDED } },
    expected: { status: 409, error: 'session_ended' },
  },
  {
    name: 'passes when verify accepts the id',
    options: { verify: verifyKnown },
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ACTIVE } },
    expected: { status: 200, echo: { session_id: ACTIVE } },
  },
  {
    name: 'returns 500 internal_error when verify throws',
    options: {
      verify: () => {
        throw new Error('session store down')
      },
    },
    request: { method: 'GET', path: '/work', headers: { 'x-session-id': ACTIVE } },
    expected: { status: 500, error: 'internal_error' },
  },
]

/** Options every adapter factory must refuse when it is called, before any request. */
export const BAD_OPTIONS: readonly { name: string; options: SessionGuardOptions<unknown> }[] = [
  { name: 'no sources', options: { sources: [] } },
  { name: 'an unknown source', options: { sources: ['cookie' as 'header'] } },
  { name: 'a source listed twice', options: { sources: ['header', 'header'] } },
  { name: 'a zero body limit', options: { maxBodyBytes: 0 } },
  { name: 'a fractional body limit', options: { maxBodyBytes: 1.5 } },
  { name: 'an exempt path without a leading slash', options: { exemptPaths: ['healthz'] } },
  { name: 'a global exempt pattern', options: { exemptPaths: [/^\/health/g] } },
  { name: 'a verify that is not a function', options: { verify: 'yes' as unknown as () => true } },
]

/** Streams `text` in small pieces so no content-length can be sent. */
export function chunkedBody(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text)
  let offset = 0
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(offset, offset + 4096))
      offset += 4096
    },
  })
}

/**
 * Sends a contract request with `fetch` (to a real server, or through `app.request` when given
 * Hono's request function) and reads the JSON answer.
 */
export async function sendContractRequest(
  send: (url: string, init: RequestInit) => Response | Promise<Response>,
  baseUrl: string,
  request: ContractRequest,
): Promise<ContractResponse> {
  const init: RequestInit & { duplex?: 'half' } = { method: request.method, headers: request.headers ?? {} }
  if (request.body !== undefined) {
    const bytes = request.gzip ? new Uint8Array(gzipSync(request.body)) : undefined
    if (bytes) init.headers = { ...request.headers, 'content-encoding': 'gzip' }
    init.body = request.chunked ? chunkedBody(request.body) : (bytes ?? request.body)
    if (request.chunked) init.duplex = 'half'
  }
  const res = await send(`${baseUrl}${request.path}`, init)
  const text = await res.text()
  return { status: res.status, contentType: res.headers.get('content-type'), json: JSON.parse(text) }
}
