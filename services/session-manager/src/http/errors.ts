import { LogCorruptError } from '@care/event-log'
import { isClientDisconnect } from '@care/observability'
import { type ErrorCode, type ErrorResponse, errorResponse, type FieldError } from '@care/schemas'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { SessionError } from '../sessions/session-errors.js'
import { SessionArchivedError, StoreUnavailableError } from '../store/event-store.js'

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 1

/**
 * Renders an error code as the shared JSON error body with its status. 503s carry Retry-After.
 *
 * @example
 * return sendError(c, 'payload_too_large')
 */
export function sendError(
  c: Context,
  code: ErrorCode,
  extra: { message?: string; fields?: FieldError[]; details?: ErrorResponse['details'] } = {},
): Response {
  const { status, body } = errorResponse(code, extra)
  if (status === 503) c.header('Retry-After', String(RETRY_AFTER_SECONDS))
  return c.json(body, status as ContentfulStatusCode)
}

/**
 * The one error handler of the service: known errors become their documented status and the
 * shared shape; anything else is logged and answered 500 without details.
 */
export function createErrorHandler(logger: {
  error(o: object, m: string): void
  info?(o: object, m: string): void
}) {
  return function handleError(err: Error, c: Context): Response | Promise<Response> {
    if (err instanceof HTTPException) return err.getResponse()
    if (err instanceof SessionError)
      return sendError(c, err.code, { message: err.message, ...detailsOf(err) })
    if (err instanceof SessionArchivedError) {
      return sendError(c, 'session_archived', { details: { session_id: err.sessionId } })
    }
    const damaged = damagedLineOf(err)
    if (damaged) {
      // Not a bug and not a full disk: the log on disk no longer matches what was written there.
      const { file, line, reason } = damaged
      logger.error(
        { err, code: 'log_integrity', file, line, reason },
        `event log is damaged at ${file}:${line}`,
      )
      return sendError(c, 'log_integrity')
    }
    if (err instanceof StoreUnavailableError) {
      logger.error({ err, code: err.code }, 'event not stored; answered 503')
      return sendError(c, 'storage_unavailable')
    }
    if (isClientDisconnect(err)) {
      // The client hung up (or a shutdown closed its connection) mid-request: not our error.
      logger.info?.({ code: (err as { code?: unknown }).code ?? err.name }, 'client disconnected mid-request')
      return sendError(c, 'malformed_json')
    }
    logger.error({ err }, 'unhandled error')
    return sendError(c, 'internal_error')
  }
}

/** The damaged log line behind `err` (thrown as is, or as the cause of a store error), if any. */
function damagedLineOf(err: Error): LogCorruptError | undefined {
  if (err instanceof LogCorruptError) return err
  return err instanceof StoreUnavailableError && err.cause instanceof LogCorruptError ? err.cause : undefined
}

function detailsOf(err: SessionError): { details?: ErrorResponse['details'] } {
  return err.details ? { details: err.details } : {}
}
