import Type, { type Static } from 'typebox'

/**
 * Every error any CARE service or middleware answers with, and the HTTP status that goes with it.
 * Clients branch on `error`; `message` is for people.
 *
 * @example
 * if (body.error === ERROR_CODES.session_id_missing.code) reattachSession()
 */
export const ERROR_CODES = {
  malformed_json: { status: 400, message: 'The request body is not valid JSON.' },
  validation_failed: { status: 400, message: 'The request does not match the schema.' },
  forbidden_key: {
    status: 400,
    message: 'The request uses a reserved key (__proto__, constructor or prototype).',
  },
  session_id_missing: { status: 400, message: 'session_id is required and was not found in the request.' },
  session_id_invalid: {
    status: 400,
    message: 'session_id must be a ULID (26 upper-case Crockford base32 characters).',
  },
  session_id_conflict: { status: 400, message: 'The request carries two different session_id values.' },
  unauthorized: { status: 401, message: 'A valid bearer token is required.' },
  forbidden: { status: 403, message: 'This token may not perform this action.' },
  not_found: { status: 404, message: 'No such route.' },
  method_not_allowed: {
    status: 405,
    message: 'This route does not accept this method; see the Allow header.',
  },
  session_not_found: {
    status: 404,
    message:
      'No session with this session_id exists for this user; check the session_id, or start a new session.',
  },
  session_ended: { status: 409, message: 'The session has already ended.' },
  session_archived: {
    status: 410,
    message:
      'The events of this session were moved out of the live log by retention (care-sessions archive); read them from the archive directory.',
  },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The request body must be application/json.' },
  idempotency_conflict: {
    status: 422,
    message:
      'This record_id was already used with a different body; send a new record_id for a new request, or the same body to retry.',
  },
  record_id_expired: {
    status: 422,
    message:
      'This record_id was created longer ago than the retry window (CARE_RETRY_WINDOW); make a new record_id (a fresh ULID) for a new request.',
  },
  record_id_in_future: {
    status: 422,
    message:
      'This record_id was created more than 5 minutes in the future; check the clock of the machine that made it, then send a new record_id.',
  },
  not_ready: { status: 503, message: 'The service is starting up.' },
  storage_unavailable: {
    status: 503,
    message: 'The event could not be stored durably; nothing was recorded.',
  },
  upstream_unavailable: { status: 503, message: 'A downstream service did not answer.' },
  log_integrity: {
    status: 503,
    message:
      'The event log is damaged where this request needs it; nothing was recorded. An operator must check it (care-sessions verify).',
  },
  internal_error: { status: 500, message: 'Unexpected error.' },
} as const satisfies Record<string, { status: number; message: string }>

/** A machine-readable error code from {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES

/**
 * One problem with one field of the request, located by JSON Pointer.
 *
 * @example
 * const problem: FieldError = { path: '/timestamp', message: 'must be UTC ISO 8601 with milliseconds and Z' }
 */
export const FieldError = Type.Object({
  path: Type.String({ description: 'JSON Pointer to the offending value ("" for the whole record).' }),
  message: Type.String(),
})
export type FieldError = Static<typeof FieldError>

/**
 * The one JSON error body of every CARE service and of both session-guard adapters.
 *
 * @example
 * const body: ErrorResponse = {
 *   error: 'session_id_missing',
 *   message: 'session_id is required and was not found in the request.',
 * }
 */
export const ErrorResponse = Type.Object({
  error: Type.String({
    pattern: '^[a-z][a-z0-9_]*$',
    description: 'Machine-readable code (see ERROR_CODES).',
  }),
  message: Type.String({ description: 'Human-readable explanation.' }),
  fields: Type.Optional(
    Type.Array(FieldError, { description: 'The offending fields, when there are some.' }),
  ),
  details: Type.Optional(
    Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), {
      description: 'Extra facts about the error, e.g. how an already ended session ended.',
    }),
  ),
})
export type ErrorResponse = Static<typeof ErrorResponse>

/**
 * Builds an {@link ErrorResponse} body and its HTTP status from a code.
 *
 * @example
 * const { status, body } = errorResponse('session_not_found')
 * return c.json(body, status)
 */
export function errorResponse(
  code: ErrorCode,
  extra: { message?: string; fields?: FieldError[]; details?: ErrorResponse['details'] } = {},
): { status: (typeof ERROR_CODES)[ErrorCode]['status']; body: ErrorResponse } {
  const { status, message } = ERROR_CODES[code]
  const body: ErrorResponse = { error: code, message: extra.message ?? message }
  if (extra.fields && extra.fields.length > 0) body.fields = extra.fields
  if (extra.details) body.details = extra.details
  return { status, body }
}
