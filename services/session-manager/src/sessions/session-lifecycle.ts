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
import type { IdFactory } from '../ids/id-factory.js'
import { type StoredEvent, StoreUnavailableError } from '../store/event-store.js'
import {
  checkRecordIdTime,
  explicitEndEvent,
  iso,
  type RequestKind,
  requestDigest,
  sessionEndedError,
  startEvent,
  timeoutEndEvent,
  touchEvent,
} from './lifecycle-events.js'
import { SessionError } from './session-errors.js'
import {
  deadlineOf,
  type EarlierAnswer,
  type SessionRepository,
  type SessionState,
  type StartInsert,
} from './session-repository.js'

/** What the read side tells an auditor about one session. Never "the open session of user X". */
export interface SessionSummary {
  session_id: string
  user_id: string
  status: 'open' | 'ended'
  started_at: string
  last_activity_at: string
  expires_at?: string
  ended_at?: string
  end_reason?: SessionEndReason
  event_count: number
}

export interface Outcome<T> {
  /** 201 for a new session, 200 for everything else (including replayed retries). */
  status: 200 | 201
  output: T
}

export interface TimelinePage {
  events: StoredEvent[]
  /** Where the next page starts; undefined on the last page. */
  nextCursor?: number
}

/**
 * The most events one timeline page returns (and the default page size); `GET
 * /sessions/{id}/timeline?limit=` accepts 1..MAX_TIMELINE_PAGE.
 *
 * @example
 * const page = await sessions.timeline(id, { limit: MAX_TIMELINE_PAGE })
 */
export const MAX_TIMELINE_PAGE = 1000

/**
 * How soon a timeout end that could not be stored is tried again.
 *
 * @example
 * clock.advance(TIMEOUT_RETRY_MS); await sessions.sweepExpired() // the end is tried again
 */
export const TIMEOUT_RETRY_MS = 1000

/**
 * The session limits and the retry window, from configuration (`CARE_IDLE_TIMEOUT`,
 * `CARE_MAX_DURATION`, `CARE_RETRY_WINDOW`).
 *
 * @example
 * const policy: SessionPolicy = { idleTimeoutMs: 30 * 60_000, maxDurationMs: 86_400_000, retryWindowMs: 86_400_000 }
 */
export interface SessionPolicy {
  /** A session with no start/touch for this long ends with reason `idle_timeout`. */
  idleTimeoutMs: number
  /** A session open this long ends with reason `max_duration`, however active. */
  maxDurationMs: number
  /** How long a `record_id` is remembered for retries; older record_ids are refused (422). */
  retryWindowMs: number
}

/**
 * Milliseconds since the epoch. Injected so tests control time.
 *
 * @example
 * const clock: Clock = { now: Date.now }
 */
export interface Clock {
  now(): number
}

/**
 * Where the lifecycle reports what it could not do (pino's shape).
 *
 * @example
 * new SessionLifecycleService(repository, { policy, newId, logger: pino() })
 */
export interface LifecycleLogger {
  warn(o: object, m: string): void
  error(o: object, m: string): void
  info(o: object, m: string): void
}

/**
 * Watches every lifecycle event the service stores, on any repository (metrics, spans). `record`
 * runs `write` exactly once and returns its result: true when the event was stored, false when the
 * session changed meanwhile (the service then reads it again and may retry with another event). It
 * may time the write (an append span) and, on true, count it (timeout ends by reason) or mark it
 * (`session.start`/`session.end` span events). Without an observer the write runs directly.
 *
 * @example
 * const observer: LifecycleObserver = {
 *   async record(event, write) {
 *     const stored = await write()
 *     if (stored && event.event === 'session.end') ends.inc({ reason: event.reason })
 *     return stored
 *   },
 * }
 * new SessionLifecycleService(repository, { policy, newId, observer })
 */
export interface LifecycleObserver {
  record(event: SessionLifecycleEvent, write: () => Promise<boolean>): Promise<boolean>
}

/**
 * Options of {@link SessionLifecycleService}: the policy, the id factory, and for tests a clock and
 * no real timers.
 *
 * @example
 * const options: SessionLifecycleOptions = { policy, newId: createIdFactory(), clock, timers: false }
 */
export interface SessionLifecycleOptions {
  policy: SessionPolicy
  newId: IdFactory
  clock?: Clock
  /** Arm real timers for timeouts. Tests with a manual clock turn them off and call `sweepExpired()`. */
  timers?: boolean
  /** How often to look for expired sessions when the repository cannot name the next deadline (default: a quarter of the idle timeout, 100 ms..5 s). */
  sweepIntervalMs?: number
  logger?: LifecycleLogger
  /** Told about every event written (see {@link LifecycleObserver}); none by default. */
  observer?: LifecycleObserver
}

/**
 * The session lifecycle as the HTTP layer sees it. Implementations throw `SessionError` for
 * refusals the caller can act on (404, 409, 422) and `StoreUnavailableError` when nothing could be
 * made durable (503).
 *
 * @example
 * const { status, output } = await sessions.start(input) // 201, or 200 for a retry
 */
export interface SessionLifecycle {
  start(input: SessionManagerStartInput): Promise<Outcome<SessionManagerStartOutput>>
  end(input: SessionManagerEndInput): Promise<Outcome<SessionManagerEndOutput>>
  touch(input: SessionManagerTouchInput): Promise<Outcome<SessionManagerTouchOutput>>
  describe(sessionId: string): Promise<SessionSummary | undefined>
  timeline(sessionId: string, page?: { cursor?: number; limit?: number }): Promise<TimelinePage | undefined>
  /** Number of sessions currently open (for readiness and metrics). */
  openSessions(): Promise<number>
  close(): Promise<void>
}

const MAX_ATTEMPTS = 20
const SWEEP_BATCH = 200
const MAX_TIMER_MS = 2 ** 31 - 1
const ANSWER_PRUNE_INTERVAL_MS = 60_000

/**
 * Every session rule, written once over a {@link SessionRepository}: start, touch and end; retries
 * (same `record_id` and body: the original output as 200; another body: 422); `record_id`
 * freshness; 404 alike for unknown sessions and other users' sessions; ending an expired session
 * before acting on it; the timeout sweep with the true expiry time; describe and timelines.
 *
 * Order of the retry rule, for every request: the `record_id` must be fresh (within the retry
 * window, not from the future: 422), then an earlier answer to it is replayed (or 422 for another
 * body), then the request runs. Mutations of one session run one at a time in this process; the
 * repository's compare-and-set settles races with other processes.
 *
 * @example
 * const repository = await EmbeddedSessionRepository.open((apply) => FileEventStore.open({ dir }, apply))
 * const sessions = new SessionLifecycleService(repository, { policy, newId: createIdFactory() })
 * await sessions.recover() // ends what expired while down, arms the timeout timer
 * const { output } = await sessions.start(input)
 */
export class SessionLifecycleService<R extends SessionState = SessionState> implements SessionLifecycle {
  private readonly policy: SessionPolicy
  private readonly newId: IdFactory
  private readonly clock: Clock
  private readonly timersEnabled: boolean
  private readonly sweepIntervalMs: number
  private readonly logger: LifecycleLogger | undefined
  private readonly observer: LifecycleObserver | undefined
  /** Tails of the per-session queues: mutations of one session run one at a time. */
  private readonly queues = new Map<string, Promise<unknown>>()
  private lastNow: number
  private lastAnswerPrune = 0
  private timer: NodeJS.Timeout | undefined
  private timerDeadline = Number.POSITIVE_INFINITY
  private poller: NodeJS.Timeout | undefined
  private sweeping: Promise<void> | undefined
  private recovered = false
  private closed = false

  constructor(
    readonly repository: SessionRepository<R>,
    options: SessionLifecycleOptions,
  ) {
    this.policy = options.policy
    this.newId = options.newId
    this.clock = options.clock ?? { now: Date.now }
    this.timersEnabled = options.timers ?? true
    this.logger = options.logger
    this.observer = options.observer
    this.sweepIntervalMs =
      options.sweepIntervalMs ?? Math.min(5000, Math.max(100, Math.floor(this.policy.idleTimeoutMs / 4)))
    this.lastNow = repository.newestEventAt()
  }

  /**
   * Ends the sessions whose limit passed while nothing was sweeping (with their true expiry
   * time), then arms the timeout timer. Call once, before any request.
   */
  async recover(): Promise<void> {
    if (this.recovered) throw new Error('recover() may only be called once')
    this.recovered = true
    this.forgetOldAnswers(this.now())
    await this.sweepExpired()
    if (this.timersEnabled && !this.closed && !this.repository.tracksExpiry) {
      this.poller = setInterval(() => {
        this.sweepExpired().catch((error: unknown) => {
          this.logger?.error({ err: error }, 'could not look for expired sessions; will retry')
        })
      }, this.sweepIntervalMs)
      this.poller.unref()
    }
  }

  /** Opens a new session. A retry (same `record_id`, same body) returns the original output. */
  async start(input: SessionManagerStartInput): Promise<Outcome<SessionManagerStartOutput>> {
    this.assertUsable()
    const digest = requestDigest('start', input)
    let now = this.now()
    checkRecordIdTime(input.record_id, now, this.policy.retryWindowMs)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) now = this.now()
      const ids = { recordId: this.newId(now), sessionId: this.newId(now) }
      const event = startEvent(input, ids, now, digest, this.policy)
      let result = { kind: 'retry' } as StartInsert
      const insert = async () => {
        result = await this.repository.insertStart(event)
        return result.kind === 'inserted'
      }
      if (await (this.observer ? this.observer.record(event, insert) : insert())) {
        this.scheduled(now + Math.min(this.policy.idleTimeoutMs, this.policy.maxDurationMs))
        return { status: 201, output: event }
      }
      if (result.kind === 'existing')
        return this.replay<SessionManagerStartOutput>(result.answer, digest, input)
      // 'retry': an id collided or the earlier writer of this record_id failed; go again.
    }
    throw new StoreUnavailableError('too much contention on this record_id', 'CONTENTION')
  }

  /** Ends a session explicitly. 404 for an unknown session or one of another user; 409 if already ended. */
  end(input: SessionManagerEndInput): Promise<Outcome<SessionManagerEndOutput>> {
    return this.mutate('end', input, (session, now, digest) =>
      explicitEndEvent(session, input, this.newId(now), now, digest),
    )
  }

  /** Records activity on an open session, pushing back its idle timeout. */
  touch(input: SessionManagerTouchInput): Promise<Outcome<SessionManagerTouchOutput>> {
    return this.mutate('touch', input, (session, now, digest) =>
      touchEvent(session, input, this.newId(now), now, digest),
    )
  }

  /** Status, start and end of one session, or undefined if there is no such session. */
  async describe(sessionId: string): Promise<SessionSummary | undefined> {
    const session = await this.repository.loadSession(sessionId)
    if (!session) return undefined
    const summary: SessionSummary = {
      session_id: session.sessionId,
      user_id: session.userId,
      status: session.end ? 'ended' : 'open',
      started_at: iso(session.startedAt),
      last_activity_at: iso(session.lastActivityAt),
      event_count: session.eventCount,
    }
    if (session.end) {
      summary.ended_at = iso(session.end.endedAt)
      summary.end_reason = session.end.reason
    } else {
      summary.expires_at = iso(deadlineOf(session).at)
    }
    return summary
  }

  /**
   * One page of a session's events in session order. `cursor` is the index of the first event;
   * `limit` is clamped to [1, {@link MAX_TIMELINE_PAGE}]; `nextCursor` is undefined on the last page.
   */
  async timeline(
    sessionId: string,
    page: { cursor?: number; limit?: number } = {},
  ): Promise<TimelinePage | undefined> {
    const from = Math.max(0, page.cursor ?? 0)
    const to = from + Math.min(MAX_TIMELINE_PAGE, Math.max(1, page.limit ?? MAX_TIMELINE_PAGE))
    const found = await this.repository.readEvents(sessionId, from, to)
    if (!found) return undefined
    return to < found.total ? { events: found.events, nextCursor: to } : { events: found.events }
  }

  /** Number of sessions currently open. */
  openSessions(): Promise<number> {
    return this.repository.countOpen()
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

  /** Stops the timers, waits for work in progress, then closes the repository. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    if (this.poller) clearInterval(this.poller)
    this.timer = undefined
    this.poller = undefined
    await this.sweeping?.catch(() => {})
    await Promise.allSettled([...this.queues.values()])
    await this.repository.close()
  }

  /**
   * Runs an end or touch in the session's queue: replays an earlier answer, refuses an unknown or
   * foreign session (404) or an ended one (409), records a timeout that passed unnoticed (then 409),
   * and otherwise appends `build`'s event if the session did not change since it was read.
   */
  private async mutate<O extends SessionManagerEndOutput | SessionManagerTouchOutput>(
    kind: RequestKind,
    input: SessionManagerEndInput | SessionManagerTouchInput,
    build: (session: R, now: number, digest: string) => O,
  ): Promise<Outcome<O>> {
    this.assertUsable()
    const digest = requestDigest(kind, input)
    checkRecordIdTime(input.record_id, this.now(), this.policy.retryWindowMs)
    return this.serialize(input.session_id, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const { session, answer } = await this.repository.load(input.session_id, input.record_id)
        if (answer) return this.replay<O>(answer, digest, input)
        if (!session || session.userId !== input.user_id) throw new SessionError('session_not_found')
        if (session.end) throw sessionEndedError(session.end.reason, session.end.endedAt)
        const now = this.nowAfter(session)
        const due = deadlineOf(session)
        if (due.at <= now) {
          if (await this.appendTimeoutEnd(session, now, due)) throw sessionEndedError(due.reason, due.at)
          continue
        }
        const event = build(session, now, digest)
        if (await this.append(event, session)) {
          if (event.event === 'session.touch')
            this.scheduled(deadlineOf({ ...session, lastActivityAt: now }).at)
          return { status: 200, output: event }
        }
      }
      throw new StoreUnavailableError('too much contention on this session', 'CONTENTION')
    })
  }

  /** An earlier answer to the same `record_id`: the original output for the same body, 422 otherwise. */
  private async replay<O extends SessionLifecycleEvent>(
    answer: EarlierAnswer,
    digest: string,
    input: { record_id: string },
  ): Promise<Outcome<O>> {
    if (answer.digest !== digest) {
      throw new SessionError('idempotency_conflict', undefined, { record_id: input.record_id })
    }
    return { status: 200, output: (await answer.event()) as O }
  }

  private async runSweep(): Promise<void> {
    for (;;) {
      const now = this.now()
      if (now - this.lastAnswerPrune >= ANSWER_PRUNE_INTERVAL_MS) this.forgetOldAnswers(now)
      const due = await this.repository.claimExpired(now, SWEEP_BATCH)
      const results = await Promise.allSettled(
        due.map((session) => this.serialize(session.sessionId, () => this.expire(session))),
      )
      let failed = false
      for (const [index, result] of results.entries()) {
        if (result.status === 'fulfilled') continue
        // The end could not be stored; try again shortly rather than lose the timeout.
        failed = true
        const sessionId = due[index]!.sessionId
        this.logger?.error(
          { err: result.reason, session_id: sessionId },
          'could not record a timeout end; will retry',
        )
        this.repository.retryExpiryAt(sessionId, this.now() + TIMEOUT_RETRY_MS)
      }
      if (failed || due.length < SWEEP_BATCH || this.closed) return
    }
  }

  /** Records the timeout end of a claimed session if its deadline passed. Runs in the session's queue. */
  private async expire(claimed: R): Promise<void> {
    let session: R | undefined = claimed
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (!session || session.end) return
      const now = this.nowAfter(session)
      const due = deadlineOf(session)
      if (due.at > now) return
      if (await this.appendTimeoutEnd(session, now, due)) return
      session = await this.repository.loadSession(claimed.sessionId)
    }
    throw new StoreUnavailableError('too much contention on this session', 'CONTENTION')
  }

  private appendTimeoutEnd(session: R, now: number, due: { at: number; reason: SessionEndReason }) {
    return this.append(timeoutEndEvent(session, this.newId(now), now, due), session)
  }

  private append(event: SessionLifecycleEvent, expected: R): Promise<boolean> {
    if (this.closed) {
      return Promise.reject(new StoreUnavailableError('the service is shutting down', 'SHUTTING_DOWN'))
    }
    const write = () => this.repository.appendIfUnchanged(event, expected)
    return this.observer ? this.observer.record(event, write) : write()
  }

  private serialize<T>(sessionId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(sessionId)
    const run = previous ? previous.then(fn, fn) : fn()
    const tail = run.catch(() => {})
    this.queues.set(sessionId, tail)
    void tail.then(() => {
      if (this.queues.get(sessionId) === tail) this.queues.delete(sessionId)
    })
    return run
  }

  /** A new deadline exists at `at`: bring the timer forward if it is the earliest. */
  private scheduled(at: number): void {
    if (at < this.timerDeadline) this.armTimer()
  }

  private armTimer(): void {
    if (!this.timersEnabled || this.closed || !this.recovered || !this.repository.tracksExpiry) return
    const next = this.repository.nextExpiryAt()
    if (next === undefined) return
    if (this.timer) clearTimeout(this.timer)
    this.timerDeadline = next
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - this.clock.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerDeadline = Number.POSITIVE_INFINITY
      void this.sweepExpired().catch(() => {})
    }, delay)
    this.timer.unref()
  }

  private forgetOldAnswers(now: number): void {
    this.lastAnswerPrune = now
    this.repository.forgetAnswersBefore(now - this.policy.retryWindowMs)
  }

  private assertUsable(): void {
    if (this.closed) throw new StoreUnavailableError('the service is shutting down', 'SHUTTING_DOWN')
    if (!this.recovered) throw new Error('the session service was used before recover()')
  }

  /** Now, but never before the session's newest event (another instance's clock may be ahead). */
  private nowAfter(session: SessionState): number {
    return Math.max(this.now(), session.lastEventAt)
  }

  /** Wall-clock time that never goes backwards, so log timestamps stay in order. */
  private now(): number {
    this.lastNow = Math.max(this.lastNow, this.clock.now())
    return this.lastNow
  }
}
