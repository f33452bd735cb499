import { type ErrorCode, type ErrorResponse, errorResponse } from '@care/schemas'
import type { VerifyResult } from './options.js'

/**
 * A refused request as both adapters carry it: the HTTP status and the shared error body.
 *
 * @example
 * const rejection: GuardRejection = rejectWith('session_id_missing')
 * res.status(rejection.status).json(rejection.body)
 */
export interface GuardRejection {
  status: number
  body: ErrorResponse
}

/**
 * Builds a {@link GuardRejection} from an `ERROR_CODES` code, optionally with a clearer message.
 *
 * @example
 * throw new SessionGuardError(rejectWith('payload_too_large', 'The body is larger than 16384 bytes.'))
 */
export function rejectWith(
  code: ErrorCode,
  message?: string,
  details?: ErrorResponse['details'],
): GuardRejection {
  const { status, body } = errorResponse(code, {
    ...(message === undefined ? {} : { message }),
    ...(details === undefined ? {} : { details }),
  })
  return { status, body }
}

const VERIFY_CODES: ReadonlySet<string> = new Set([
  'session_not_found',
  'session_ended',
  'upstream_unavailable',
])

/**
 * Turns what a `verify` hook answered into `undefined` (accepted) or a rejection. Anything else
 * than `true` or a known code is a bug in the hook, so it throws and the app's error handling
 * reports a 500, rather than letting the request through.
 *
 * @example
 * const rejection = judgeVerifyResult(await verify(id, req))
 * if (rejection) return next(new SessionGuardError(rejection))
 */
export function judgeVerifyResult(result: VerifyResult): GuardRejection | undefined {
  if (result === true) return undefined
  if (typeof result === 'string' && VERIFY_CODES.has(result)) return rejectWith(result)
  if (typeof result === 'object' && result !== null && VERIFY_CODES.has(result.code))
    return rejectWith(result.code, result.message, result.details)
  throw new TypeError(
    `sessionGuard: verify must return true, "session_not_found", "session_ended" or "upstream_unavailable" (got ${String(result)})`,
  )
}
