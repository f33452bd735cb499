import Type, { type Static } from 'typebox'
import { BaseFields, HUMAN_NEEDS_PERFORMER } from '../base-schema.js'
import { Metadata, SourceName, Ulid } from '../primitives.js'
import { InputDigest, SessionEventFields } from './event-fields.js'

/**
 * Request to open a new session (interaction window) for `user_id`. `record_id` is the
 * caller's idempotency key: a retry with the same `record_id` and body returns the original output.
 *
 * @example
 * const input: SessionManagerStartInput = {
 *   schema_version: '1.1',
 *   record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
 *   user_id: 'user-42',
 *   timestamp: '2026-03-01T12:00:00.000Z',
 *   source: 'ui',
 *   origin: 'human',
 *   performer_id: 'caregiver-7',
 *   metadata: { device: 'tablet' },
 * }
 */
export const SessionManagerStartInput = Type.Object(
  { ...BaseFields, metadata: Type.Optional(Metadata) },
  { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerStartInput = Static<typeof SessionManagerStartInput>

/**
 * The authoritative `session.start` event. `session_id` is new and must be propagated by the
 * caller to every downstream worker; `timestamp` is when the session started.
 *
 * @example
 * const started: SessionManagerStartOutput = await response.json()
 * fetch(workerUrl, { headers: { 'x-session-id': started.session_id } })
 */
export const SessionManagerStartOutput = Type.Object(
  {
    ...SessionEventFields,
    event: Type.Literal('session.start'),
    input_record_id: Ulid,
    input_source: SourceName,
    input_digest: InputDigest,
    metadata: Type.Optional(Metadata),
    idle_timeout_ms: Type.Integer({
      minimum: 1,
      description: 'The session ends after this much inactivity.',
    }),
    max_duration_ms: Type.Integer({
      minimum: 1,
      description: 'The session ends this long after it started.',
    }),
  },
  { ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerStartOutput = Static<typeof SessionManagerStartOutput>
