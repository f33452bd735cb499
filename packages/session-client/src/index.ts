/**
 * `@care/session-client`: a typed, fetch-based client for the CARE session-manager that mints
 * `record_id`s and retries safely. ESM only; runs in browsers and Node 20+.
 */
export { newRecordId } from './record-id.js'
export type { RetryPolicy } from './retry-policy.js'
export {
  type CallOptions,
  type EndRequest,
  SessionClient,
  type SessionClientOptions,
  type StartRequest,
  type TouchRequest,
} from './session-client.js'
export { SessionClientError, type SessionClientErrorCode } from './session-client-error.js'
