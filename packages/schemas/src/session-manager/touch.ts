import Type, { type Static } from 'typebox'
import { BaseFields, HUMAN_NEEDS_PERFORMER } from '../base-schema.js'
import { SourceName, Ulid } from '../primitives.js'
import { InputDigest, SessionEventFields } from './event-fields.js'

/**
 * Heartbeat that keeps an open session from reaching its idle timeout.
 *
 * @example
 * const touch: SessionManagerTouchInput = { ...baseRecord, session_id: started.session_id }
 */
export const SessionManagerTouchInput = Type.Object(
  { ...BaseFields, session_id: Ulid },
  { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerTouchInput = Static<typeof SessionManagerTouchInput>

/**
 * The recorded `session.touch` event: activity was seen at `timestamp`.
 *
 * @example
 * const touched: SessionManagerTouchOutput = await response.json()
 */
export const SessionManagerTouchOutput = Type.Object(
  {
    ...SessionEventFields,
    event: Type.Literal('session.touch'),
    input_record_id: Ulid,
    input_source: SourceName,
    input_digest: InputDigest,
  },
  { ...HUMAN_NEEDS_PERFORMER },
)
export type SessionManagerTouchOutput = Static<typeof SessionManagerTouchOutput>
