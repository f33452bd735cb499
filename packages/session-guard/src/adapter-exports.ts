// The core names both framework entry points (`/express`, `/hono`) re-export.
export {
  ALL_SESSION_ID_SOURCES,
  DEFAULT_MAX_BODY_BYTES,
  SESSION_ID_HEADER,
  type SessionGuardOptions,
  type SessionIdSource,
  type VerifyResult,
  type VerifySession,
} from './index.js'
export { type SessionFetch, type SessionFetchOptions, sessionFetch, withSessionId } from './propagation.js'
