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
