import type { SessionEndReason, SessionLifecycleEvent, SessionManagerStartOutput } from '@care/schemas'
import type { StoredEvent } from '../store/event-store.js'

/**
 * What the lifecycle knows of one session, whatever store keeps it. `eventCount` is the
 * compare-and-set version: {@link SessionRepository.appendIfUnchanged} only succeeds while the
 * stored session still has exactly this many events.
 *
 * @example
 * const state = stateAfter(undefined, startEvent) // { eventCount: 1, lastActivityAt: started, ... }
 */
export interface SessionState {
  readonly sessionId: string
  readonly userId: string
  /** Epoch ms of the start. */
  readonly startedAt: number
  readonly idleTimeoutMs: number
  readonly maxDurationMs: number
  /** Epoch ms of the start or the last touch. */
  readonly lastActivityAt: number
  /** Epoch ms of the newest stored event of this session (its `timestamp`). */
  readonly lastEventAt: number
  /** Events stored for this session; the compare-and-set version. */
  readonly eventCount: number
  readonly end?: { readonly reason: SessionEndReason; readonly endedAt: number }
}

/**
 * The earlier answer to a `record_id`: the digest of the request that caused it, and its event.
 *
 * @example
 * if (answer.digest === digest) return { status: 200, output: await answer.event() }
 */
export interface EarlierAnswer {
  readonly digest: string
  /** The event that request stored (waits if it is still being stored; rejects if storing failed). */
  event(): Promise<SessionLifecycleEvent>
}

/**
 * What became of a start: stored, answered before (by this or another instance), or to be tried
 * again with new ids.
 *
 * @example
 * const result = await repository.insertStart(event) // { kind: 'inserted' } → 201
 */
export type StartInsert =
  | { readonly kind: 'inserted' }
  | { readonly kind: 'existing'; readonly answer: EarlierAnswer }
  | { readonly kind: 'retry' }

/**
 * The storage port of the session lifecycle: only what every store can do atomically. The
 * lifecycle (`SessionLifecycleService`) holds every session rule; a repository keeps events and
 * answers "what is stored". Two rules are the repository's because only the store can make them
 * atomic: a `record_id` is answered at most once (a unique key), and an event is appended only if
 * its session did not change since it was read (compare-and-set on `eventCount`). Every method is
 * async (PostgreSQL is); the embedded adapter answers reads from memory without I/O.
 *
 * `R` is the adapter's own session record (it may carry more than {@link SessionState}, such as a
 * chain head); the lifecycle hands back exactly what `load` returned.
 *
 * @example
 * const { session, answer } = await repository.load(sessionId, recordId)
 * if (session && !answer) await repository.appendIfUnchanged(touch, session) // false: re-read and try again
 */
export interface SessionRepository<R extends SessionState = SessionState> {
  /** The session (if any) and the earlier answer to `recordId` (if any), read together. */
  load(sessionId: string, recordId: string): Promise<{ session?: R; answer?: EarlierAnswer }>
  /** The session, or undefined if there is none. */
  loadSession(sessionId: string): Promise<R | undefined>
  /**
   * Stores a new session's start unless its `input_record_id` was answered before (then the earlier
   * answer) or its ids collide (then `retry`). Resolves once the start is durable. Adapters may
   * batch concurrent starts into one write.
   */
  insertStart(event: SessionManagerStartOutput): Promise<StartInsert>
  /**
   * Appends a touch or end of `expected`'s session if the session still has `expected.eventCount`
   * events and its `input_record_id` (if any) was never answered; resolves true once durable, false
   * if either changed (the caller re-reads). Rejects with `StoreUnavailableError` if nothing could be stored.
   */
  appendIfUnchanged(event: SessionLifecycleEvent, expected: R): Promise<boolean>
  /** Open sessions whose deadline is at or before `now`, at most `limit` (entries may be stale; re-check). */
  claimExpired(now: number, limit: number): Promise<R[]>
  /** Asks for `sessionId` to be claimed again at `at` (a timeout end could not be stored). */
  retryExpiryAt(sessionId: string, at: number): void
  /**
   * True if the repository knows every deadline (in memory) and `nextExpiryAt` names the next one,
   * so the lifecycle arms a precise timer; false if the lifecycle must poll `claimExpired`.
   */
  readonly tracksExpiry: boolean
  /** The earliest known deadline (when `tracksExpiry`), or undefined if none. */
  nextExpiryAt(): number | undefined
  /** Events `[from, to)` of one session in session order, and how many it has; undefined if no such session. */
  readEvents(
    sessionId: string,
    from: number,
    to: number,
  ): Promise<{ events: StoredEvent[]; total: number } | undefined>
  /** Number of open sessions. */
  countOpen(): Promise<number>
  /** Epoch ms of the newest stored event this instance knows of (0 if none), so its clock never goes behind the log. */
  newestEventAt(): number
  /** Lets go of answers to `record_id`s made before `recordTime` (retries of those are refused anyway). */
  forgetAnswersBefore(recordTime: number): void
  /** Flushes and releases the store. Idempotent. */
  close(): Promise<void>
}

/**
 * The one session state machine: the state after `event`, or an error if `event` cannot follow
 * (a second start, anything before the start or after the end). Used by the lifecycle's adapters
 * when they apply what they stored and by the PostgreSQL import.
 *
 * @example
 * let state = stateAfter(undefined, start)
 * state = stateAfter(state, touch)
 */
export function stateAfter(state: SessionState | undefined, event: SessionLifecycleEvent): SessionState {
  const time = Date.parse(event.timestamp)
  if (event.event === 'session.start') {
    if (state) throw new Error(`second session.start for session ${event.session_id}`)
    return {
      sessionId: event.session_id,
      userId: event.user_id,
      startedAt: time,
      idleTimeoutMs: event.idle_timeout_ms,
      maxDurationMs: event.max_duration_ms,
      lastActivityAt: time,
      lastEventAt: time,
      eventCount: 1,
    }
  }
  if (!state) throw new Error(`${event.event} for unknown session ${event.session_id}`)
  if (state.end) throw new Error(`${event.event} after the end of session ${event.session_id}`)
  const base = { ...state, eventCount: state.eventCount + 1, lastEventAt: Math.max(state.lastEventAt, time) }
  if (event.event === 'session.touch') return { ...base, lastActivityAt: time }
  return { ...base, end: { reason: event.reason, endedAt: Date.parse(event.ended_at) } }
}

/**
 * When a session ends by itself: the earlier of idle timeout after the last activity and the
 * maximum duration after the start.
 *
 * @example
 * const { at, reason } = deadlineOf(state) // reason: 'idle_timeout' | 'max_duration'
 */
export function deadlineOf(state: SessionState): { at: number; reason: SessionEndReason } {
  const idle = state.lastActivityAt + state.idleTimeoutMs
  const max = state.startedAt + state.maxDurationMs
  return idle < max ? { at: idle, reason: 'idle_timeout' } : { at: max, reason: 'max_duration' }
}
