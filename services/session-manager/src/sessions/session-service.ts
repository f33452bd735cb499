import { withoutChainFields } from '@care/event-log'
import type {
  SessionEndReason,
  SessionLifecycleEvent,
  SessionManagerEndInput,
  SessionManagerEndOutput,
  SessionManagerStartInput,
  SessionManagerStartOutput,
  SessionManagerTouchInput,
  SessionManagerTouchOutput,
} from '@care/schemas'
import { decodeTime } from 'ulid'
import type { IdFactory } from '../ids/id-factory.js'
import { type EventStore, type StoredEvent, StoreUnavailableError } from '../store/event-store.js'
import { ExpirySchedule } from './expiry-schedule.js'
import {
  checkRecordIdTime,
  explicitEndEvent,
  iso,
  type RequestKind,
  requestDigest,
  sessionDeadline,
  sessionEndedError,
  startEvent,
  timeoutEndEvent,
  touchEvent,
} from './lifecycle-events.js'
import { SessionError } from './session-errors.js'
import type { Outcome, SessionLifecycle, SessionSummary, TimelinePage } from './session-lifecycle.js'

export interface SessionPolicy {
  /** A session with no start/touch for this long ends with reason `idle_timeout`. */
  idleTimeoutMs: number
  /** A session open this long ends with reason `max_duration`, however active. */
  maxDurationMs: number
  /** How long a `record_id` is remembered for retries; older record_ids are refused (422). */
  retryWindowMs: number
}

/** Milliseconds since the epoch. Injected so tests control time. */
export interface Clock {
  now(): number
}

export interface SessionServiceOptions {
  policy: SessionPolicy
  newId: IdFactory
  clock?: Clock
  /** Arm a real timer for timeouts. Tests with a manual clock turn it off and call `sweepExpired()`. */
  timers?: boolean
  logger?: {
    warn(o: object, m: string): void
    error(o: object, m: string): void
    info(o: object, m: string): void
  }
}

/** Opens a store, handing every stored event to `apply` in log order before resolving. */
export type OpenStore<Ref> = (apply: (event: StoredEvent, ref: Ref) => void) => Promise<EventStore<Ref>>

interface SessionState<Ref> {
  readonly sessionId: string
  readonly userId: string
  readonly startedAt: number
  readonly idleTimeoutMs: number
  readonly maxDurationMs: number
  lastActivityAt: number
  end?: { reason: SessionEndReason; endedAt: number }
  readonly refs: Ref[]
  /** Tail of the per-session queue: mutations of one session run one at a time. */
  queue?: Promise<unknown>
}

interface RetryEntry<Ref> {
  readonly digest: string
  readonly recordTime: number
  ref?: Ref
  pending?: Promise<Ref>
}

const MAX_TIMER_MS = 2 ** 31 - 1
const RETRY_PRUNE_INTERVAL_MS = 60_000

/**
 * The session lifecycle: creates sessions, ends them explicitly or by timeout, and answers
 * retries with the original outcome. Every state change is first made durable in the
 * {@link EventStore}; memory is only an index that `recover` rebuilds from the store.
 * There is deliberately no way to ask for "the current session" of a user.
 *
 * @example
 * const service = new SessionService({ policy, newId: createIdFactory() })
 * await service.recover((apply) => FileEventStore.open({ dir }, apply))
 * const { output } = await service.start(input)
 * await service.end({ ...endInput, session_id: output.session_id })
 */
export class SessionService<Ref = unknown> implements SessionLifecycle {
  private readonly sessions = new Map<string, SessionState<Ref>>()
  private readonly retries = new Map<string, RetryEntry<Ref>>()
  private readonly schedule = new ExpirySchedule()
  private store: EventStore<Ref> | undefined
  private readonly policy: SessionPolicy
  private readonly newId: IdFactory
  private readonly clock: Clock
  private readonly timersEnabled: boolean
  private readonly logger: SessionServiceOptions['logger']
  private lastNow = 0
  private lastRetryPrune = 0
  private timer: NodeJS.Timeout | undefined
  private timerDeadline = Number.POSITIVE_INFINITY
  private sweeping: Promise<void> | undefined
  private closed = false
  private openCount = 0

  constructor(options: SessionServiceOptions) {
    this.policy = options.policy
    this.newId = options.newId
    this.clock = options.clock ?? { now: Date.now }
    this.timersEnabled = options.timers ?? true
    this.logger = options.logger
  }

  /** Number of sessions currently open. */
  openSessions(): number {
    return this.openCount
  }

  /**
   * Opens the store, rebuilding sessions, timers and the retry index from every stored event,
   * then ends the sessions whose limit passed while the service was down (with their true
   * expiry time) and arms the timeout timer. Call once, before any request.
   */
  async recover(open: OpenStore<Ref>): Promise<EventStore<Ref>> {
    if (this.store) throw new Error('recover() may only be called once')
    const store = await open((event, ref) => this.applyRecovered(event, ref))
    this.store = store
    for (const session of this.sessions.values()) {
      if (!session.end) this.schedule.push(this.deadlineOf(session).at, session.sessionId)
    }
    this.pruneRetries(this.now())
    await this.sweepExpired()
    return store
  }

  private applyRecovered(event: StoredEvent, ref: Ref): void {
    this.lastNow = Math.max(this.lastNow, Date.parse(event.timestamp))
    if (event.event === 'session.start') {
      this.openSession(event, ref)
    } else {
      const session = this.sessions.get(event.session_id)
      if (!session) throw new Error(`log event ${event.record_id} names unknown session ${event.session_id}`)
      if (event.event === 'session.touch') {
        session.lastActivityAt = Date.parse(event.timestamp)
        session.refs.push(ref)
      } else {
        this.markEnded(session, event.reason, Date.parse(event.ended_at), ref)
      }
    }
    if (event.input_record_id && event.input_digest) {
      const recordTime = decodeTime(event.input_record_id)
      this.retries.set(event.input_record_id, { digest: event.input_digest, recordTime, ref })
    }
  }

  /** Opens a new session. A retry (same `record_id`, same body) returns the original output. */
  start(input: SessionManagerStartInput): Promise<Outcome<SessionManagerStartOutput>> {
    return this.once('start', input, async (digest) => {
      const now = this.now()
      const ids = { recordId: this.newId(now), sessionId: this.newSessionId(now) }
      const event = startEvent(input, ids, now, digest, this.policy)
      const { ref } = await this.append(event)
      this.scheduleSession(this.openSession(event, ref))
      return { status: 201, output: event, ref }
    })
  }

  /** Ends a session explicitly. 404 for an unknown session or one of another user; 409 if already ended. */
  end(input: SessionManagerEndInput): Promise<Outcome<SessionManagerEndOutput>> {
    return this.once('end', input, (digest) =>
      this.withSession(input, async (session) => {
        const now = this.now()
        const event = explicitEndEvent(session, input, this.newId(now), now, digest)
        const { ref } = await this.append(event)
        this.markEnded(session, 'explicit', now, ref)
        return { status: 200, output: event, ref }
      }),
    )
  }

  /** Records activity on an open session, pushing back its idle timeout. */
  touch(input: SessionManagerTouchInput): Promise<Outcome<SessionManagerTouchOutput>> {
    return this.once('touch', input, (digest) =>
      this.withSession(input, async (session) => {
        const now = this.now()
        const event = touchEvent(session, input, this.newId(now), now, digest)
        const { ref } = await this.append(event)
        session.lastActivityAt = now
        session.refs.push(ref)
        this.scheduleSession(session)
        return { status: 200, output: event, ref }
      }),
    )
  }

  /** Status, start and end of one session, or undefined if there is no such session. */
  describe(sessionId: string): SessionSummary | undefined {
    const session = this.sessions.get(sessionId)
    if (!session) return undefined
    const summary: SessionSummary = {
      session_id: session.sessionId,
      user_id: session.userId,
      status: session.end ? 'ended' : 'open',
      started_at: iso(session.startedAt),
      last_activity_at: iso(session.lastActivityAt),
      event_count: session.refs.length,
    }
    if (session.end) {
      summary.ended_at = iso(session.end.endedAt)
      summary.end_reason = session.end.reason
    } else {
      summary.expires_at = iso(this.deadlineOf(session).at)
    }
    return summary
  }

  /**
   * One page of a session's events in log order. `cursor` is the index of the first event to
   * return; the result's `nextCursor` is undefined on the last page. Reads only this session's
   * events (by index), never the whole log.
   */
  async timeline(
    sessionId: string,
    page: { cursor?: number; limit?: number } = {},
  ): Promise<TimelinePage | undefined> {
    const session = this.sessions.get(sessionId)
    if (!session) return undefined
    const from = Math.max(0, page.cursor ?? 0)
    const to = Math.min(session.refs.length, from + Math.max(1, page.limit ?? 1000))
    const events = await this.requireStore().read(session.refs.slice(from, to))
    return to < session.refs.length ? { events, nextCursor: to } : { events }
  }

  /** Ends every open session whose idle or maximum-duration limit has passed. */
  sweepExpired(): Promise<void> {
    if (this.sweeping) return this.sweeping
    this.sweeping = this.runSweep().finally(() => {
      this.sweeping = undefined
      this.armTimer()
    })
    return this.sweeping
  }

  /** Stops the timeout timer and waits for work in progress. Does not close the store. */
  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.sweeping
    await Promise.allSettled([...this.sessions.values()].map((s) => s.queue))
  }

  private async runSweep(): Promise<void> {
    const now = this.now()
    if (now - this.lastRetryPrune >= RETRY_PRUNE_INTERVAL_MS) this.pruneRetries(now)
    const due = new Set(this.schedule.popDue(now))
    const results = await Promise.allSettled(
      [...due].map((id) => {
        const session = this.sessions.get(id)
        return session ? this.serialize(session, () => this.expireIfDue(session)) : undefined
      }),
    )
    for (const [index, result] of results.entries()) {
      if (result.status === 'rejected') {
        // The end event could not be stored; try again shortly rather than lose the timeout.
        const sessionId = [...due][index]!
        this.logger?.error(
          { err: result.reason, session_id: sessionId },
          'could not record a timeout end; will retry',
        )
        this.schedule.push(this.now() + 1000, sessionId)
      }
    }
  }

  /** Appends the timeout end if the session's deadline has passed. Runs inside the session queue. */
  private async expireIfDue(session: SessionState<Ref>): Promise<void> {
    if (session.end) return
    const now = this.now()
    const deadline = this.deadlineOf(session)
    if (deadline.at > now) return
    const event = timeoutEndEvent(session, this.newId(now), now, deadline)
    const { ref } = await this.append(event)
    this.markEnded(session, deadline.reason, deadline.at, ref)
  }

  /**
   * Runs a request at most once per `record_id`: a retry with the same body waits for and
   * returns the original outcome (as 200); a different body under the same `record_id` is 422.
   */
  private async once<I extends { record_id: string }, O extends SessionLifecycleEvent>(
    kind: RequestKind,
    input: I,
    run: (digest: string) => Promise<{ status: 200 | 201; output: O; ref: Ref }>,
  ): Promise<Outcome<O>> {
    const digest = requestDigest(kind, input)
    const existing = this.retries.get(input.record_id)
    if (existing) {
      if (existing.digest !== digest) {
        throw new SessionError('idempotency_conflict', undefined, { record_id: input.record_id })
      }
      const ref = existing.pending ? await existing.pending : existing.ref!
      const [stored] = await this.requireStore().read([ref])
      return { status: 200, output: withoutChainFields(stored!) as O }
    }
    const recordTime = checkRecordIdTime(input.record_id, this.now(), this.policy.retryWindowMs)
    let settle!: { resolve(ref: Ref): void; reject(error: unknown): void }
    const pending = new Promise<Ref>((resolve, reject) => {
      settle = { resolve, reject }
    })
    pending.catch(() => {}) // only concurrent retries await it; they see the same error
    const entry: RetryEntry<Ref> = { digest, recordTime, pending }
    this.retries.set(input.record_id, entry)
    try {
      const { status, output, ref } = await run(digest)
      entry.ref = ref
      entry.pending = undefined
      settle.resolve(ref)
      return { status, output }
    } catch (error) {
      this.retries.delete(input.record_id)
      settle.reject(error)
      throw error
    }
  }

  /**
   * Finds the caller's session and runs `fn` on it in the session's queue. An unknown session
   * and another user's session both answer 404, so ids of other users are never confirmed.
   */
  private withSession<T>(
    input: { session_id: string; user_id: string },
    fn: (session: SessionState<Ref>) => Promise<T>,
  ): Promise<T> {
    const session = this.sessions.get(input.session_id)
    if (!session || session.userId !== input.user_id) {
      return Promise.reject(new SessionError('session_not_found'))
    }
    return this.serialize(session, async () => {
      await this.expireIfDue(session)
      if (session.end) {
        throw sessionEndedError(session.end.reason, session.end.endedAt)
      }
      return fn(session)
    })
  }

  private serialize<T>(session: SessionState<Ref>, fn: () => Promise<T>): Promise<T> {
    const run = (session.queue ?? Promise.resolve()).then(fn, fn)
    const tail = run.catch(() => {})
    session.queue = tail
    void tail.then(() => {
      if (session.queue === tail) session.queue = undefined
    })
    return run
  }

  private async append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: Ref }> {
    if (this.closed) throw new StoreUnavailableError('the service is shutting down', 'SHUTTING_DOWN')
    return this.requireStore().append(event)
  }

  private requireStore(): EventStore<Ref> {
    if (!this.store) throw new Error('the session service was used before recover()')
    return this.store
  }

  private openSession(event: SessionManagerStartOutput, ref: Ref): SessionState<Ref> {
    const startedAt = Date.parse(event.timestamp)
    const session: SessionState<Ref> = {
      sessionId: event.session_id,
      userId: event.user_id,
      startedAt,
      idleTimeoutMs: event.idle_timeout_ms,
      maxDurationMs: event.max_duration_ms,
      lastActivityAt: startedAt,
      refs: [ref],
    }
    this.sessions.set(session.sessionId, session)
    this.openCount++
    return session
  }

  private markEnded(session: SessionState<Ref>, reason: SessionEndReason, endedAt: number, ref: Ref): void {
    session.end = { reason, endedAt }
    session.refs.push(ref)
    this.openCount--
  }

  private deadlineOf(session: SessionState<Ref>): { at: number; reason: SessionEndReason } {
    return sessionDeadline(session.startedAt, session.lastActivityAt, session)
  }

  private scheduleSession(session: SessionState<Ref>): void {
    const { at } = this.deadlineOf(session)
    this.schedule.push(at, session.sessionId)
    if (at < this.timerDeadline) this.armTimer()
  }

  private armTimer(): void {
    if (!this.timersEnabled || this.closed) return
    const next = this.schedule.peek()
    if (next === undefined) return
    if (this.timer) clearTimeout(this.timer)
    this.timerDeadline = next
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - this.clock.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerDeadline = Number.POSITIVE_INFINITY
      void this.sweepExpired()
    }, delay)
    this.timer.unref()
  }

  private pruneRetries(now: number): void {
    this.lastRetryPrune = now
    const oldest = now - this.policy.retryWindowMs
    for (const [recordId, entry] of this.retries) {
      if (entry.recordTime < oldest && !entry.pending) this.retries.delete(recordId)
    }
  }

  private newSessionId(now: number): string {
    let id = this.newId(now)
    while (this.sessions.has(id)) id = this.newId(now) // a monotonic factory never repeats; belt and braces across restarts
    return id
  }

  /** Wall-clock time that never goes backwards, so log timestamps stay in order. */
  private now(): number {
    this.lastNow = Math.max(this.lastNow, this.clock.now())
    return this.lastNow
  }
}
