import type { FieldError } from '@care/schemas'

/**
 * The end reasons a session can have (`SessionEndReason`), in the order export codes them.
 *
 * @example
 * if (!END_REASONS.includes(value as EndReason)) throw new Error('unknown reason')
 */
export const END_REASONS = ['explicit', 'idle_timeout', 'max_duration'] as const
/**
 * One of `END_REASONS`.
 *
 * @example
 * const reason: EndReason = 'idle_timeout'
 */
export type EndReason = (typeof END_REASONS)[number]

/**
 * What an export selects. Sessions are chosen by `session_id`, `user_id` (the user who started
 * them) and `reason` (how they ended; an open session matches no reason). Events of those sessions
 * are then kept when `from <= timestamp < to`. Times are kept as given (ISO 8601) and as epoch ms.
 *
 * @example
 * const filters: ExportFilters = { from: '2026-03-01T00:00:00.000Z', reason: 'idle_timeout' }
 */
export interface ExportFilters {
  from?: string
  to?: string
  user_id?: string
  session_id?: string
  reason?: EndReason
}

/**
 * `ULID_PATTERN` of @care/schemas, repeated here (a test keeps them equal) because importing the
 * schemas package compiles every validator: ~30 MB the export and timeline commands do not need.
 *
 * @example
 * new RegExp(SESSION_ID_PATTERN).test('01JNC3G8Z9X7W6V5T4S3R2Q1P0') // true
 */
export const SESSION_ID_PATTERN = '^[0-7][0-9A-HJKMNP-TV-Z]{25}$'
const SESSION_ID = new RegExp(SESSION_ID_PATTERN)
// A date, or a date and time with an explicit zone: `2026-03-01`, `2026-03-01T12:00Z`, `...T12:00:00.000+02:00`.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/
const USER_ID = /^[\x21-\x7E]{1,256}$/

/**
 * Checks raw filter values (CLI flags or query parameters) and returns them typed, or the field
 * errors in the shared error shape. A date without a time means midnight UTC.
 *
 * @example
 * const parsed = parseExportFilters({ from: c.req.query('from'), reason: c.req.query('reason') })
 * if (!parsed.ok) return sendError(c, 'validation_failed', { fields: parsed.fields })
 */
export function parseExportFilters(
  raw: Record<string, string | undefined>,
): { ok: true; value: ExportFilters } | { ok: false; fields: FieldError[] } {
  const fields: FieldError[] = []
  const value: ExportFilters = {}
  for (const name of ['from', 'to'] as const) {
    const text = raw[name]
    if (text === undefined) continue
    if (!ISO_TIME.test(text) || Number.isNaN(Date.parse(text))) {
      fields.push({ path: `/${name}`, message: `${name} must be an ISO 8601 date or date-time with a zone` })
    } else value[name] = text
  }
  if (value.from !== undefined && value.to !== undefined && Date.parse(value.from) >= Date.parse(value.to)) {
    fields.push({ path: '/to', message: 'to must be later than from' })
  }
  if (raw.session_id !== undefined) {
    if (!SESSION_ID.test(raw.session_id))
      fields.push({ path: '/session_id', message: 'session_id must be a ULID' })
    else value.session_id = raw.session_id
  }
  if (raw.user_id !== undefined) {
    if (!USER_ID.test(raw.user_id))
      fields.push({ path: '/user_id', message: 'user_id must be 1-256 visible characters' })
    else value.user_id = raw.user_id
  }
  if (raw.reason !== undefined) {
    if (!(END_REASONS as readonly string[]).includes(raw.reason)) {
      fields.push({ path: '/reason', message: `reason must be one of ${END_REASONS.join(', ')}` })
    } else value.reason = raw.reason as EndReason
  }
  return fields.length > 0 ? { ok: false, fields } : { ok: true, value }
}
