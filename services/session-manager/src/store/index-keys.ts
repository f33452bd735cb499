import type { SessionLifecycleEvent } from '@care/schemas'

/**
 * The lookup keys of the embedded store's on-disk index (issue #12): every lifecycle event is found again
 * under its session's key, a start also under its user's key and `START_KEY`, an end under its reason's key,
 * and any event that came from a caller's input record under that record's key. One rule in one place:
 * the store indexes with {@link indexKeysOf} and readers ask with these builders.
 *
 * @example
 * for await (const ref of store.lookup(userKey('user-42'), { newestFirst: true })) refs.push(ref)
 */
export function sessionKey(sessionId: string): string {
  return `s:${sessionId}`
}

/**
 * Key of the session starts of one user.
 *
 * @example
 * store.lookup(userKey('user-42'), { newestFirst: true })
 */
export function userKey(userId: string): string {
  return `u:${userId}`
}

/**
 * Key of the event written for one caller input record (`input_record_id`).
 *
 * @example
 * store.lookup(recordKey('01J...'))
 */
export function recordKey(recordId: string): string {
  return `r:${recordId}`
}

/**
 * Key under which every `session.start` is indexed (a date range of starts reads it with notBefore/notAfter).
 *
 * @example
 * store.lookup(START_KEY, { newestFirst: true, notBefore: Date.parse('2026-03-01') })
 */
export const START_KEY = 'start'

/**
 * Key of the `session.end` events with one end reason.
 *
 * @example
 * store.lookup(endReasonKey('idle_timeout'), { newestFirst: true })
 */
export function endReasonKey(reason: string): string {
  return `e:${reason}`
}

/**
 * The keys one lifecycle event is indexed under (the `indexKeys` option of the embedded log).
 *
 * @example
 * indexKeysOf(startEvent) // ['s:01J...', 'u:user-42', 'r:01J...', 'start']
 */
export function indexKeysOf(event: SessionLifecycleEvent): readonly string[] {
  const record = event as SessionLifecycleEvent & {
    user_id?: string
    input_record_id?: string
    reason?: string
  }
  const keys = [sessionKey(record.session_id)]
  if (record.event === 'session.start' && typeof record.user_id === 'string')
    keys.push(userKey(record.user_id))
  if (typeof record.input_record_id === 'string') keys.push(recordKey(record.input_record_id))
  if (record.event === 'session.start') keys.push(START_KEY)
  if (record.event === 'session.end' && typeof record.reason === 'string')
    keys.push(endReasonKey(record.reason))
  return keys
}
