import type { ErrorCode, ErrorResponse } from '@care/schemas'

/**
 * Why a call failed: a shared CARE error code the service answered with, or one of the client's own
 * (`network_error` when no answer arrived, `timeout` when the call's time ran out,
 * `unexpected_response` when the answer was not the documented JSON).
 */
export type SessionClientErrorCode = ErrorCode | 'network_error' | 'timeout' | 'unexpected_response'

/**
 * The one error every {@link SessionClient} call rejects with (except when the caller's own
 * `AbortSignal` aborts, which rejects with the signal's reason). Branch on `code`; `status` and
 * `body` are the service's answer when there was one.
 *
 * @example
 * try {
 *   await client.touch({ session_id, user_id: 'user-42', origin: 'system' })
 * } catch (err) {
 *   if (err instanceof SessionClientError && err.code === 'session_ended') await client.start(...)
 *   else throw err
 * }
 */
export class SessionClientError extends Error {
  override readonly name = 'SessionClientError'
  /** The shared error code (`body.error`) or the client's own code. */
  readonly code: SessionClientErrorCode
  /** HTTP status of the last answer; undefined when none arrived. */
  readonly status: number | undefined
  /** The shared error body of the last answer, when it had one. */
  readonly body: ErrorResponse | undefined
  /** How many requests were sent (1 when the first answer was final). */
  readonly attempts: number

  constructor(
    code: SessionClientErrorCode,
    message: string,
    facts: { status?: number; body?: ErrorResponse; attempts: number; cause?: unknown },
  ) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause })
    this.code = code
    this.status = facts.status
    this.body = facts.body
    this.attempts = facts.attempts
  }
}
