import Type, { type Static } from 'typebox'
import { BaseFields, HUMAN_NEEDS_PERFORMER } from './base-schema.js'
import { Ulid } from './primitives.js'

/**
 * The F3 contract "tag every CARE message": any record a worker writes or sends about an interaction
 * (a JSONL log line, a queued message, a response body) is a BaseSchema v1.1 record that also
 * carries the `session_id` it belongs to. Workers add their own fields (`event`, payloads), so
 * unknown properties are allowed; the tag itself is not optional. Published as
 * `@care/schemas/json-schema/SessionTaggedRecord.json` for validators in any language.
 *
 * @example
 * const line: SessionTaggedRecord = {
 *   schema_version: '1.1', record_id: '01JNC3H0000000000000000000', session_id: started.session_id,
 *   user_id: 'user-42', timestamp: '2026-03-01T12:00:00.123Z', source: 'sample_worker', origin: 'system',
 * }
 * if (!validateSessionTaggedRecord.check(line)) throw new Error('untagged record')
 */
export const SessionTaggedRecord = Type.Object(
  { ...BaseFields, session_id: Ulid },
  { additionalProperties: true, ...HUMAN_NEEDS_PERFORMER },
)
export type SessionTaggedRecord = Static<typeof SessionTaggedRecord>
