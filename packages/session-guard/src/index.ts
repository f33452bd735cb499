/**
 * Framework-free core of the session guard: where a session id is read from, the policy that
 * accepts or rejects it, and the helpers that propagate it to outgoing calls. The adapters live in
 * `@care/session-guard/express` and `@care/session-guard/hono`.
 */

export {
  classifyContentType,
  type JsonContentKind,
  parseGuardedBody,
  unsupportedEncoding,
} from './json-body.js'
export {
  ALL_SESSION_ID_SOURCES,
  DEFAULT_MAX_BODY_BYTES,
  type GuardConfig,
  resolveGuardConfig,
  type SessionGuardOptions,
  type SessionIdSource,
  type VerifyRejectionCode,
  type VerifyResult,
  type VerifySession,
} from './options.js'
export { type SessionFetch, type SessionFetchOptions, sessionFetch, withSessionId } from './propagation.js'
export { type GuardRejection, judgeVerifyResult, rejectWith } from './rejection.js'
export {
  decideSessionId,
  extractSessionIdFromBody,
  extractSessionIdFromHeaders,
  extractSessionIdFromQuery,
  type HeaderCarrier,
  isSessionId,
  SESSION_ID_FIELD,
  SESSION_ID_HEADER,
  type SessionIdDecision,
  type SessionIdRejection,
  type SessionIdSources,
} from './session-id.js'
