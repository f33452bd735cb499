import Type, { type Static } from 'typebox'
import { Identifier, Timestamp, Ulid } from '../primitives.js'
import { SessionEndReason } from './end.js'
import { SessionLifecycleEvent } from './lifecycle-event.js'

/**
 * What `GET /sessions/{session_id}` answers: the state of one session, folded from its events.
 * `expires_at` is set while the session is open; `ended_at` and `end_reason` once it has ended.
 *
 * @example
 * const summary: SessionSummary = await (await fetch(`${url}/sessions/${id}`)).json()
 * if (summary.status === 'ended') console.log(summary.end_reason)
 */
export const SessionSummary = Type.Object({
  session_id: Ulid,
  user_id: Identifier,
  status: Type.Union([Type.Literal('open'), Type.Literal('ended')]),
  started_at: Timestamp,
  last_activity_at: Timestamp,
  expires_at: Type.Optional(Timestamp),
  ended_at: Type.Optional(Timestamp),
  end_reason: Type.Optional(SessionEndReason),
  event_count: Type.Integer({ minimum: 1, description: 'Events recorded for this session so far.' }),
})
export type SessionSummary = Static<typeof SessionSummary>

/**
 * One page of `GET /sessions/{session_id}/timeline`: events in log order, and the cursor of the
 * next page (`null` on the last page; pass it back as `?cursor=`).
 *
 * @example
 * let cursor: string | null = '0'
 * while (cursor !== null) {
 *   const page: SessionTimelinePage = await (await fetch(`${url}/sessions/${id}/timeline?cursor=${cursor}`)).json()
 *   for (const event of page.events) console.log(event.event)
 *   cursor = page.next_cursor
 * }
 */
export const SessionTimelinePage = Type.Object({
  session_id: Ulid,
  events: Type.Array(SessionLifecycleEvent),
  next_cursor: Type.Union([Type.String({ pattern: '^[0-9]+$' }), Type.Null()], {
    description: 'Opaque position of the next page, or null when this is the last page.',
  }),
})
export type SessionTimelinePage = Static<typeof SessionTimelinePage>
