import Type from 'typebox'
import { Identifier, Origin, Timestamp, Ulid } from '../primitives.js'

/** Fields shared by every event that session_manager emits. */
export const SessionEventFields = {
  schema_version: Type.Literal('1.1'),
  record_id: Ulid,
  user_id: Identifier,
  session_id: Ulid,
  timestamp: Timestamp,
  source: Type.Literal('session_manager'),
  origin: Origin,
  performer_id: Type.Optional(Identifier),
}

/**
 * SHA-256 of the canonical JSON of the request that caused an event. Stored with the event so a
 * retry with the same `record_id` can be told apart from a different request, even after a restart.
 */
export const InputDigest = Type.String({
  pattern: '^sha256:[0-9a-f]{64}$',
  description: 'sha256 of the canonical JSON of the request that caused this event.',
})
