import Type, { type Static } from 'typebox'
import { BaseFields, HUMAN_NEEDS_PERFORMER } from '../base-schema.js'
import { SourceName, Timestamp, Ulid } from '../primitives.js'
import { InputDigest, SessionEventFields } from './event-fields.js'

/**
 * Request to end a session explicitly. `session_id` is required: nothing ever ends "the current
 * session" of a user, only the session the caller names.
 *
 * @example
 * const input: SessionManagerEndInput = {
 *   schema_version: '1.1',
 *   record_id: '01JNC3H1A2B3C4D5E6F7G8H9J0',
 *   user_id: 'user-42',
 *   session_id: started.session_id,
 *   timestamp: '2026-03-01T12:30:00.000Z',
 *   source: 'ui',
 *   origin: 'human',
 *   performer_id: 'caregiver-7',
 * }
 */
export const SessionManagerEndInput = Type.Object(
  { ...BaseFields, session_id: Ulid },
  { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerEndInput = Static<typeof SessionManagerEndInput>

/**
 * Why a session ended: asked for (`explicit`), no activity for the idle timeout
 * (`idle_timeout`), or open for longer than the maximum duration (`max_duration`).
 *
 * @example
 * if (ended.reason !== 'explicit') notifyCaregiver(ended.session_id)
 */
export const SessionEndReason = Type.Union([
  Type.Literal('explicit'),
  Type.Literal('idle_timeout'),
  Type.Literal('max_duration'),
])
export type SessionEndReason = Static<typeof SessionEndReason>

/**
 * The authoritative `session.end` event. `ended_at` is when the session really ended (for a
 * timeout: when the limit was reached); `timestamp` is when the event was recorded.
 * Timeout ends carry no `input_record_id`: nobody asked for them.
 *
 * @example
 * const ended: SessionManagerEndOutput = await response.json()
 * console.log(ended.reason, ended.started_at, ended.ended_at)
 */
export const SessionManagerEndOutput = Type.Object(
  {
    ...SessionEventFields,
    event: Type.Literal('session.end'),
    reason: SessionEndReason,
    started_at: Timestamp,
    ended_at: Timestamp,
    input_record_id: Type.Optional(Ulid),
    input_source: Type.Optional(SourceName),
    input_digest: Type.Optional(InputDigest),
  },
  { ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerEndOutput = Static<typeof SessionManagerEndOutput>
