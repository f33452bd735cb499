import { ERROR_CODES, type ErrorCode, type ErrorResponse } from '@care/schemas'

/**
 * A request the session service refuses for a reason the caller can act on. Carries the
 * shared error code; the HTTP layer maps it to the status in `ERROR_CODES`.
 */
export class SessionError extends Error {
  override readonly name = 'SessionError'
  constructor(
    readonly code: Extract<
      ErrorCode,
      | 'session_not_found'
      | 'session_ended'
      | 'idempotency_conflict'
      | 'record_id_expired'
      | 'record_id_in_future'
      | 'not_ready'
    >,
    message?: string,
    readonly details?: ErrorResponse['details'],
  ) {
    // Without a message of its own, the error says what the shared table says for its code.
    super(message ?? ERROR_CODES[code].message)
  }
}
