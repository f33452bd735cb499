import Type, { type Static } from 'typebox'

/** The BaseSchema version every record of this contract carries. */
export const SCHEMA_VERSION = '1.1' as const

/** Crockford base32 ULID, upper case, first character 0-7 so the 48-bit time fits. */
export const ULID_PATTERN = '^[0-7][0-9A-HJKMNP-TV-Z]{25}$'

// A calendar-exact date (no Feb 30, Feb 29 only in leap years), then a time with exactly
// three fractional digits and a literal Z. Expressed as a pattern, not a `format`, so every
// JSON Schema validator (TypeBox, Ajv, other languages) enforces it identically.
const DAY_1_28 = '\\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])'
const DAY_29_30 = '\\d{4}-(?:0[13-9]|1[0-2])-(?:29|30)'
const DAY_31 = '\\d{4}-(?:0[13578]|1[02])-31'
const LEAP_DAY = '(?:\\d{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29'
const TIME = 'T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d\\.\\d{3}Z'

/** UTC ISO 8601 with millisecond precision and `Z`, e.g. `2026-03-01T12:00:00.000Z`. */
export const TIMESTAMP_PATTERN = `^(?:${DAY_1_28}|${DAY_29_30}|${DAY_31}|${LEAP_DAY})${TIME}$`

/** Printable ASCII without spaces: no control characters, no line breaks, no look-alikes. */
export const IDENTIFIER_PATTERN = '^[\\x21-\\x7E]+$'

/** Lower-case service or client name, e.g. `ui`, `caregiver_app`, `session_manager`. */
export const SOURCE_PATTERN = '^[a-z][a-z0-9_.:-]*$'

/**
 * A ULID: 26 Crockford base32 characters, upper case.
 *
 * @example
 * Value.Check(Ulid, '01JNC3G8Z9X7W6V5T4S3R2Q1P0') // true
 */
export const Ulid = Type.String({
  pattern: ULID_PATTERN,
  minLength: 26,
  maxLength: 26,
  description: 'ULID (26 upper-case Crockford base32 characters).',
})
export type Ulid = Static<typeof Ulid>

/**
 * A UTC timestamp in ISO 8601 with exactly millisecond precision and a `Z` suffix.
 *
 * @example
 * const ts: Timestamp = new Date().toISOString() // '2026-03-01T12:00:00.000Z'
 */
export const Timestamp = Type.String({
  pattern: TIMESTAMP_PATTERN,
  minLength: 24,
  maxLength: 24,
  description: 'UTC ISO 8601 timestamp with millisecond precision and Z suffix.',
})
export type Timestamp = Static<typeof Timestamp>

/**
 * An opaque identifier (`user_id`, `performer_id`): 1-128 printable ASCII characters, no spaces.
 *
 * @example
 * const userId: Identifier = 'user-42'
 */
export const Identifier = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: IDENTIFIER_PATTERN,
  description: 'Opaque identifier: 1-128 printable ASCII characters, no whitespace or control characters.',
})
export type Identifier = Static<typeof Identifier>

/**
 * The name of the component that produced a record, e.g. `ui` or `session_manager`.
 *
 * @example
 * const source: SourceName = 'caregiver_app'
 */
export const SourceName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: SOURCE_PATTERN,
  description: 'Producer name: lower-case letter, then lower-case letters, digits, or _ . : -',
})
export type SourceName = Static<typeof SourceName>

/**
 * Who originated a record. `human` inputs must name the person in `performer_id`.
 *
 * @example
 * const origin: Origin = 'human'
 */
export const Origin = Type.Union([Type.Literal('human'), Type.Literal('system')], {
  description:
    '`human` when a person (user or caregiver) caused the record; `system` for automatic triggers.',
})
export type Origin = Static<typeof Origin>

/**
 * Small, flat key/value metadata attached to a session start (device, locale, app version...).
 *
 * @example
 * const metadata: Metadata = { device: 'tablet', locale: 'en-GB' }
 */
export const Metadata = Type.Record(
  Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
  Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean()]),
  {
    additionalProperties: false,
    maxProperties: 32,
    description:
      'Up to 32 keys (snake_case, at most 64 characters) with string (<= 1024), number or boolean values.',
  },
)
export type Metadata = Static<typeof Metadata>
