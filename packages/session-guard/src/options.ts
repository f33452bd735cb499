import type { ErrorResponse } from '@care/schemas'

/** Where the guard may look for the session id. */
export type SessionIdSource = 'header' | 'body' | 'query'

/**
 * Every source, in the order the guard reads them. The default for `sources`.
 *
 * @example
 * sessionGuard({ sources: ALL_SESSION_ID_SOURCES.filter((s) => s !== 'query') })
 */
export const ALL_SESSION_ID_SOURCES: readonly SessionIdSource[] = Object.freeze(['header', 'body', 'query'])

/**
 * Default cap on a JSON body the guard reads itself (16 KiB); larger bodies get 413 `payload_too_large`.
 *
 * @example
 * sessionGuard({ maxBodyBytes: DEFAULT_MAX_BODY_BYTES * 4 })
 */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024

/** The codes a `verify` hook may reject an otherwise well-formed session id with. */
export type VerifyRejectionCode = 'session_not_found' | 'session_ended' | 'upstream_unavailable'

/**
 * What `verify` answers: `true` to accept, a code to reject, or a code with a message/details.
 * There is no implicit accept: returning nothing is a configuration bug and is rejected (500).
 */
export type VerifyResult =
  | true
  | VerifyRejectionCode
  | { code: VerifyRejectionCode; message?: string; details?: ErrorResponse['details'] }

/**
 * Optional asynchronous check that the (well-formed) id names a live session, e.g. by asking the
 * session store. Receives the framework's request object (`req` for Express, `c` for Hono).
 *
 * @example
 * const verify: VerifySession<unknown> = async (id) => ((await sessions.get(id)) ? true : 'session_not_found')
 */
export type VerifySession<Ctx> = (sessionId: string, context: Ctx) => VerifyResult | Promise<VerifyResult>

/**
 * Options shared by both adapters. `exemptPaths` match the full request path (no query string):
 * a string matches exactly, a RegExp is tested against it.
 *
 * @example
 * const options: SessionGuardOptions<unknown> = { sources: ['header'], exemptPaths: ['/healthz'] }
 */
export interface SessionGuardOptions<Ctx> {
  /** Which sources to read; default all of header, body and query. */
  sources?: readonly SessionIdSource[]
  /** Paths that pass without a session id, e.g. health checks. */
  exemptPaths?: readonly (string | RegExp)[]
  /** Largest JSON body the guard reads itself, in bytes; default 16 KiB. */
  maxBodyBytes?: number
  /** Rejects ids that are well formed but unknown or ended. */
  verify?: VerifySession<Ctx>
}

/** Options after validation, in the shape the adapters use on the hot path. */
export interface GuardConfig<Ctx> {
  readHeader: boolean
  readBody: boolean
  readQuery: boolean
  maxBodyBytes: number
  isExempt: (path: string) => boolean
  /** False when no path is exempt, so an adapter need not even work out the request's path. */
  hasExemptions: boolean
  verify: VerifySession<Ctx> | undefined
}

/**
 * Validates adapter options once, when the factory runs, and throws a `TypeError` naming the bad
 * option; nothing is checked per request. Used by both adapters.
 *
 * @example
 * const config = resolveGuardConfig({ sources: ['header'], exemptPaths: [], maxBodyBytes: 1024 })
 */
export function resolveGuardConfig<Ctx>(options: {
  sources: readonly SessionIdSource[]
  exemptPaths: readonly (string | RegExp)[]
  maxBodyBytes: number
  verify: VerifySession<Ctx> | undefined
}): GuardConfig<Ctx> {
  const { sources, exemptPaths, maxBodyBytes, verify } = options
  if (!Array.isArray(sources) || sources.length === 0)
    throw new TypeError('sessionGuard: `sources` must list at least one of "header", "body", "query"')
  for (const source of sources)
    if (!ALL_SESSION_ID_SOURCES.includes(source))
      throw new TypeError(`sessionGuard: unknown source ${JSON.stringify(source)} in \`sources\``)
  if (new Set(sources).size !== sources.length)
    throw new TypeError('sessionGuard: `sources` lists a source twice')
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0)
    throw new TypeError('sessionGuard: `maxBodyBytes` must be a positive integer')
  if (verify !== undefined && typeof verify !== 'function')
    throw new TypeError('sessionGuard: `verify` must be a function')
  if (!Array.isArray(exemptPaths)) throw new TypeError('sessionGuard: `exemptPaths` must be an array')
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  for (const path of exemptPaths) {
    if (path instanceof RegExp) {
      // A global or sticky RegExp keeps lastIndex between calls and would match every other request.
      if (path.global || path.sticky)
        throw new TypeError(`sessionGuard: exempt pattern ${path} must not use the g or y flag`)
      patterns.push(path)
    } else if (typeof path === 'string' && path.startsWith('/')) exact.add(path)
    else throw new TypeError(`sessionGuard: exempt path ${JSON.stringify(path)} must start with "/"`)
  }
  return {
    readHeader: sources.includes('header'),
    readBody: sources.includes('body'),
    readQuery: sources.includes('query'),
    maxBodyBytes,
    hasExemptions: exact.size > 0 || patterns.length > 0,
    isExempt:
      exact.size === 0 && patterns.length === 0
        ? () => false
        : (path) => exact.has(path) || patterns.some((pattern) => pattern.test(path)),
    verify,
  }
}
