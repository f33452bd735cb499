import type { SessionLifecycleEvent } from '@care/schemas'

// The keys under which the event log indexes a lifecycle event (`OpenLogOptions.indexKeys`), so a
// session, a user's sessions, a record_id, the starts of a date range or the ends of one reason are
// found again with `lookup` without reading the log. One module, so writers and readers agree.

/**
 * The index key of every event of one session: `s:<session_id>`.
 *
 * @example
 * for await (const position of log.lookup(sessionKey(id))) positions.push(position)
 */
export function sessionKey(sessionId: string): string {
  return `s:${sessionId}`
}

/**
 * The index key of the starts of one user's sessions: `u:<user_id>`.
 *
 * @example
 * const newest = log.lookup(userKey('u-42'), { newestFirst: true })
 */
export function userKey(userId: string): string {
  return `u:${userId}`
}

/**
 * The index key of the event that answered one request: `r:<input_record_id>`.
 *
 * @example
 * const [answered] = await collect(log.lookup(recordKey(recordId)))
 */
export function recordKey(recordId: string): string {
  return `r:${recordId}`
}

/**
 * The index key of every session start (for a date range: `lookup(START_KEY, { notBefore, notAfter })`).
 *
 * @example
 * const today = log.lookup(START_KEY, { newestFirst: true, notBefore: Date.parse('2026-11-29') })
 */
export const START_KEY = 'start'

/**
 * The index key of the ends of one reason: `e:<reason>`.
 *
 * @example
 * const timeouts = log.lookup(endReasonKey('idle_timeout'), { newestFirst: true })
 */
export function endReasonKey(reason: string): string {
  return `e:${reason}`
}

/**
 * Every key one lifecycle event is indexed under: a start under its session, user, input record and
 * {@link START_KEY}; a touch under its session and input record; an end under its session, input record
 * (timeout ends have none) and reason.
 *
 * @example
 * EventLog.open({ dir, indexKeys: indexKeysOf, recordTime: recordTimeOf })
 */
export function indexKeysOf(event: SessionLifecycleEvent): string[] {
  const keys = [sessionKey(event.session_id)]
  if (event.event === 'session.start') {
    keys.push(userKey(event.user_id), recordKey(event.input_record_id), START_KEY)
    return keys
  }
  if (event.input_record_id !== undefined) keys.push(recordKey(event.input_record_id))
  if (event.event === 'session.end') keys.push(endReasonKey(event.reason))
  return keys
}

/**
 * The time the log keeps per segment for an event (its `timestamp`, epoch ms).
 *
 * @example
 * recordTimeOf(event) // 1764460800000
 */
export function recordTimeOf(event: SessionLifecycleEvent): number {
  return Date.parse(event.timestamp)
}
