import { withoutChainFields } from '@care/event-log'
import type { SessionLifecycleEvent, SessionManagerStartOutput } from '@care/schemas'
import { decodeTime } from 'ulid'
import { ExpirySchedule } from '../sessions/expiry-schedule.js'
import {
  deadlineOf,
  type EarlierAnswer,
  type SessionRepository,
  type SessionState,
  type StartInsert,
  stateAfter,
} from '../sessions/session-repository.js'
import type { EventStore, IndexedEventStore, StoredEvent } from './event-store.js'
import { SessionArchivedError, StoreUnavailableError } from './event-store.js'
import { LOG_INTEGRITY } from './file-event-store.js'
import { recordKey, sessionKey } from './index-keys.js'

const INSERTED: StartInsert = Object.freeze({ kind: 'inserted' })

/**
 * How much earlier than its session_id's ULID time a session's first event may be in the log (another
 * instance's clock, an imported log): cold lookups skip only segments that ended before
 * `decodeTime(session_id) - SESSION_TIME_SKEW_MS`.
 */
export const SESSION_TIME_SKEW_MS = 5 * 60_000

/** Closed sessions kept in memory after a cold read (state and event handles), least recently used out. */
export const CLOSED_CACHE_SIZE = 1024

/**
 * Verified events kept for timelines (every session's, open or closed), at most this many bytes of log
 * lines in all (16 MiB), least recently read sessions out. Events never change once stored, so a prefix
 * read once (re-hashed and chain-checked by the store) is served again from memory. Bytes are the stored
 * lines' lengths (a handle's `length`, as a `LogPosition` has; else the event's JSON length).
 *
 * @example
 * await EmbeddedSessionRepository.open(open, { timelineCacheBytes: TIMELINE_CACHE_BYTES / 4 })
 */
export const TIMELINE_CACHE_BYTES = 16 * 1024 * 1024

/**
 * At most this many bytes of one session's timeline are kept (1 MiB): a longer session is read from the
 * store on every request, so one huge session cannot push every other out.
 *
 * @example
 * await EmbeddedSessionRepository.open(open, { timelineCacheSessionBytes: TIMELINE_CACHE_SESSION_BYTES * 2 })
 */
export const TIMELINE_CACHE_SESSION_BYTES = 1024 * 1024

/** During a replay, answers older than the hot horizon are let go every this many events. */
const REPLAY_PRUNE_EVERY = 65_536
/** While running, the same every this many writes (the lifecycle also prunes on its sweeps). */
const WRITE_PRUNE_EVERY = 4096

/**
 * Opens a store, handing every stored event to `apply` in log order before resolving (after a snapshot:
 * only the events after it).
 *
 * @example
 * const open: OpenStore<LogPosition> = (apply) => FileEventStore.open({ dir }, apply)
 */
export type OpenStore<Ref> = (
  apply: (event: StoredEvent, ref: Ref) => void,
) => Promise<IndexedEventStore<Ref>>

/**
 * The hot state of the embedded repository, as a snapshot stores it: open sessions with their event
 * handles, answered `record_id`s inside the retry window, the newest event time, and from which record
 * time on the answers are complete. Plain JSON (handles must be JSON values, as log positions are).
 *
 * @example
 * const repository = await EmbeddedSessionRepository.open(open, { restore: snapshot.hot })
 */
export interface HotState<Ref> {
  sessions: { state: SessionState; refs: Ref[] }[]
  answers: { recordId: string; digest: string; ref: Ref }[]
  newestEventAt: number
  /** Answers to record_ids made at or after this epoch ms are all in `answers`. */
  answersFrom: number
}

/**
 * Options of {@link EmbeddedSessionRepository.open}.
 *
 * @example
 * await EmbeddedSessionRepository.open(open, { restore: snapshot.hot, retryWindowMs: 86_400_000 })
 */
export interface EmbeddedRepositoryOptions<Ref> {
  /** Start from this hot state (a snapshot); `open` then replays only the events after it. */
  restore?: HotState<Ref>
  /** Lets a long replay forget answers older than this before the lifecycle asks (bounded memory). */
  retryWindowMs?: number
  /**
   * Keep in memory only the answers to record_ids of the last `hotAnswersMs` (by the newest event's
   * time); older ones inside the retry window are found through the store's index (`r:<record_id>`,
   * only segments from the record_id's time on are searched). Default: the whole retry window.
   */
  hotAnswersMs?: number
  /** Bytes of verified events kept in memory for timelines, in all (default {@link TIMELINE_CACHE_BYTES}). */
  timelineCacheBytes?: number
  /** Bytes of one session's verified events kept at most (default {@link TIMELINE_CACHE_SESSION_BYTES}). */
  timelineCacheSessionBytes?: number
}

interface IndexedSession<Ref> {
  state: SessionState
  readonly refs: Ref[]
  /** An append of this session is in flight: compare-and-set fails until it settles. */
  busy: boolean
}

interface AnswerEntry<Ref> {
  readonly digest: string
  /** The `record_id`'s ULID time, decoded when first needed (pruning), not on the hot path. */
  recordTime?: number
  ref?: Ref
  /** True while the answering event is being stored; concurrent retries wait for it. */
  writing?: boolean
  /** Concurrent retries waiting for the answer being stored (made only when one asks). */
  waiters?: { resolve(ref: Ref): void; reject(error: unknown): void }[]
  /** Why storing the answering event failed (a retry that already holds this entry sees it too). */
  failed?: { error: unknown }
}

/**
 * The embedded adapter of the {@link SessionRepository} port, for one process: events live in an
 * {@link EventStore} (the JSONL log on disk, or memory in tests). Memory holds only what must be hot:
 * open sessions (state, event handles, a deadline heap) and the `record_id`s answered inside the retry
 * window. A closed session is read back from the store's index (`lookup('s:<id>')`, folded with
 * `stateAfter`; a small LRU keeps the last ones read), so it costs no heap. The hot state can be
 * captured for a snapshot ({@link captureHotState}) and restored at open, so a start replays only
 * the log after the snapshot. Compare-and-set and the unique `record_id` are checked synchronously
 * before the append starts, so they hold across concurrent callers without locks.
 *
 * @example
 * const repository = await EmbeddedSessionRepository.open((apply) => FileEventStore.open({ dir }, apply))
 * const sessions = new SessionLifecycleService(repository, { policy, newId })
 */
export class EmbeddedSessionRepository<Ref = unknown> implements SessionRepository {
  readonly tracksExpiry = true
  private readonly sessions = new Map<string, IndexedSession<Ref>>()
  private readonly closedCache = new Map<string, { state: SessionState; refs: Ref[] }>()
  private readonly answers = new Map<string, AnswerEntry<Ref>>()
  /** Per session, its first events as read (and verified) from the store: events[i] is refs[i]'s. */
  private readonly timelines = new Map<string, { events: StoredEvent[]; bytes: number }>()
  private timelineBytes = 0
  /** A read threw LOG_INTEGRITY: the timeline cache stays off (see `logDamaged`). */
  private readFoundDamage = false
  private timelineCacheBytes = TIMELINE_CACHE_BYTES
  private timelineCacheSessionBytes = TIMELINE_CACHE_SESSION_BYTES
  private readonly schedule = new ExpirySchedule()
  private openCount = 0
  private newest = 0
  private answersFrom = 0
  private opened: IndexedEventStore<Ref> | undefined
  private replaying = false
  private replayed = 0
  private retryWindowMs: number | undefined
  private hotAnswersMs: number | undefined
  /** Appends started and not yet indexed (or failed). */
  private inFlight = 0
  private drained: (() => void) | undefined
  /** While a snapshot is being captured, new appends wait for this. */
  private gate: Promise<void> | undefined
  private written = 0
  /** Runs before the store is closed (the shutdown snapshot). */
  beforeClose: (() => Promise<void>) | undefined

  private constructor() {}

  /** Opens the store through `open`, indexing every stored event (after `options.restore`, if given). */
  static async open<Ref>(
    open: OpenStore<Ref>,
    options: EmbeddedRepositoryOptions<Ref> = {},
  ): Promise<EmbeddedSessionRepository<Ref>> {
    const repository = new EmbeddedSessionRepository<Ref>()
    repository.retryWindowMs = options.retryWindowMs
    repository.hotAnswersMs = options.hotAnswersMs
    repository.timelineCacheBytes = options.timelineCacheBytes ?? TIMELINE_CACHE_BYTES
    repository.timelineCacheSessionBytes = options.timelineCacheSessionBytes ?? TIMELINE_CACHE_SESSION_BYTES
    if (options.restore) repository.restore(options.restore)
    repository.replaying = true
    const store = await open((event, ref) => repository.applyStored(event, ref))
    repository.replaying = false
    repository.opened = store
    for (const { state } of repository.sessions.values()) {
      if (!state.end) repository.schedule.push(deadlineOf(state).at, state.sessionId)
    }
    return repository
  }

  /** The event store underneath (for health and exports). */
  get store(): IndexedEventStore<Ref> {
    return this.opened!
  }

  /** Sessions held in memory (open ones, plus closed ones when the store cannot look them up). */
  get hotSessions(): number {
    return this.sessions.size
  }

  /** Answered record_ids held in memory. */
  get hotAnswers(): number {
    return this.answers.size
  }

  /** Events written through this repository since it opened (for the snapshot cadence). */
  get eventsWritten(): number {
    return this.written
  }

  async load(
    sessionId: string,
    recordId: string,
  ): Promise<{ session?: SessionState; answer?: EarlierAnswer }> {
    const entry = this.answers.get(recordId)
    const hot = this.sessions.get(sessionId)
    if (entry && hot) return { session: hot.state, answer: this.answerOf(entry) }
    const session = hot?.state ?? (await this.coldSession(sessionId))?.state
    const answer = entry ? this.answerOf(entry) : await this.coldAnswer(recordId)
    return { ...(session ? { session } : {}), ...(answer ? { answer } : {}) }
  }

  async loadSession(sessionId: string): Promise<SessionState | undefined> {
    return this.sessions.get(sessionId)?.state ?? (await this.coldSession(sessionId))?.state
  }

  async insertStart(event: SessionManagerStartOutput): Promise<StartInsert> {
    if (!this.answers.has(event.input_record_id) && !this.answersComplete(event.input_record_id)) {
      // Older than the answers kept in memory (the lifecycle refuses those first): ask the index.
      const cold = await this.coldAnswer(event.input_record_id)
      if (cold) return { kind: 'existing', answer: cold }
    }
    while (this.gate) await this.gate
    const earlier = this.answers.get(event.input_record_id)
    if (earlier) return { kind: 'existing', answer: this.answerOf(earlier) }
    // A session_id is a fresh monotonic ULID: it can only collide with one in memory.
    if (this.sessions.has(event.session_id)) return { kind: 'retry' }
    await this.write(event, event.input_record_id, event.input_digest)
    return INSERTED
  }

  async appendIfUnchanged(event: SessionLifecycleEvent, expected: SessionState): Promise<boolean> {
    while (this.gate) await this.gate
    const indexed = this.sessions.get(expected.sessionId)
    if (!indexed || indexed.busy || indexed.state.eventCount !== expected.eventCount) return false
    const recordId = event.event === 'session.start' ? undefined : event.input_record_id
    if (recordId !== undefined && this.answers.has(recordId)) return false
    indexed.busy = true
    try {
      await this.write(event, recordId, 'input_digest' in event ? event.input_digest : undefined)
    } finally {
      indexed.busy = false
    }
    return true
  }

  claimExpired(now: number, limit: number): Promise<SessionState[]> {
    const claimed = new Map<string, SessionState>()
    for (const id of this.schedule.popDue(now, limit)) {
      const state = this.sessions.get(id)?.state
      if (state && !state.end) claimed.set(id, state)
    }
    return Promise.resolve([...claimed.values()])
  }

  retryExpiryAt(sessionId: string, at: number): void {
    this.schedule.push(at, sessionId)
  }

  nextExpiryAt(): number | undefined {
    return this.schedule.peek()
  }

  async readEvents(
    sessionId: string,
    from: number,
    to: number,
  ): Promise<{ events: StoredEvent[]; total: number } | undefined> {
    const session = this.sessions.get(sessionId) ?? (await this.coldSession(sessionId))
    if (!session) return undefined
    const { refs } = session
    const total = refs.length
    const end = Math.min(to, total)
    if (from >= end) return { events: [], total }
    if (this.logDamaged()) {
      // The log was found damaged: every page is read (and verified) from the store again, so a damaged
      // line answers log_integrity instead of an earlier verified copy.
      this.clearTimelines()
      return { events: await this.readVerified(refs.slice(from, end)), total }
    }
    const entry = this.timelines.get(sessionId)
    const cached = entry?.events
    if (entry && cached) {
      this.timelines.delete(sessionId) // re-inserted: most recently read last
      this.timelines.set(sessionId, entry)
      if (cached.length >= end) return { events: cached.slice(from, end), total }
    }
    const have = cached?.length ?? 0
    if (from > have) return { events: await this.readVerified(refs.slice(from, end)), total }
    // Read only what the cached prefix lacks, then extend the prefix.
    const read = await this.readVerified(refs.slice(have, end))
    const events = cached ? [...cached, ...read] : read
    this.cacheTimeline(sessionId, events, refs)
    return { events: events.slice(from, end), total }
  }

  /**
   * Whether the timeline cache must be bypassed: a read threw the integrity error (kept until restart), or
   * the store's scrub reports a segment that no longer matches its digest.
   */
  private logDamaged(): boolean {
    return this.readFoundDamage || this.store.integrityProblem !== undefined
  }

  /** `store.read`, noting (and dropping every cached timeline) when it finds a damaged line. */
  private readVerified(refs: readonly Ref[]): Promise<StoredEvent[]> {
    return this.noticingDamage(() => this.store.read(refs))
  }

  private async noticingDamage<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } catch (error) {
      if (error instanceof StoreUnavailableError && error.code === LOG_INTEGRITY) {
        this.readFoundDamage = true
        this.clearTimelines()
      }
      throw error
    }
  }

  private clearTimelines(): void {
    this.timelines.clear()
    this.timelineBytes = 0
  }

  /**
   * Keeps `events` (the events of `refs[0..]`) as `sessionId`'s verified prefix, unless a longer one was
   * cached meanwhile or it is over the per-session cap; then drops least recently read sessions until the
   * cache is within {@link TIMELINE_CACHE_BYTES} (or the configured cap).
   */
  private cacheTimeline(sessionId: string, events: StoredEvent[], refs: readonly Ref[]): void {
    if (this.logDamaged()) return
    const current = this.timelines.get(sessionId)
    if (current && current.events.length >= events.length) return
    let bytes = 0
    for (let i = 0; i < events.length; i++) bytes += lineBytesOf(refs[i], events[i]!)
    if (bytes > this.timelineCacheSessionBytes || bytes > this.timelineCacheBytes) return
    this.timelineBytes += bytes - (current?.bytes ?? 0)
    this.timelines.delete(sessionId)
    this.timelines.set(sessionId, { events, bytes })
    for (const [id, old] of this.timelines) {
      if (this.timelineBytes <= this.timelineCacheBytes) break
      this.timelines.delete(id)
      this.timelineBytes -= old.bytes
    }
  }

  /** Bytes of verified events the timeline cache holds now (see {@link TIMELINE_CACHE_BYTES}). */
  get timelineCachedBytes(): number {
    return this.timelineBytes
  }

  countOpen(): Promise<number> {
    return Promise.resolve(this.openCount)
  }

  /** Number of open sessions, without waiting. */
  get openSessions(): number {
    return this.openCount
  }

  newestEventAt(): number {
    return this.newest
  }

  forgetAnswersBefore(recordTime: number): void {
    const hotFrom = this.hotAnswersMs === undefined ? recordTime : this.newest - this.hotAnswersMs
    this.forgetAnswersBeforeTime(Math.max(recordTime, hotFrom))
  }

  private forgetAnswersBeforeTime(recordTime: number): void {
    for (const [recordId, entry] of this.answers) {
      entry.recordTime ??= timeOf(recordId)
      if (entry.recordTime < recordTime && !entry.writing) this.answers.delete(recordId)
    }
    // Forgotten answers are still on disk, found through the index (`r:<record_id>`).
    if (recordTime > this.answersFrom) this.answersFrom = recordTime
  }

  /**
   * The hot state and the store's resume point, captured together: new appends wait while the ones in
   * flight settle, so the state holds exactly the events up to the point. `extra` runs at that instant
   * with the point (e.g. the transparency tree's root there). Appends wait about one group commit.
   *
   * @example
   * const { hot, point } = await repository.captureHotState(() => undefined)
   */
  async captureHotState<T>(
    extra: (point: unknown) => T,
  ): Promise<{ hot: HotState<Ref>; point: unknown; extra: T }> {
    while (this.gate) await this.gate
    let release!: () => void
    this.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    try {
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve
        })
      }
      this.pruneAnswers()
      const point = this.store.resumePoint()
      const hot: HotState<Ref> = {
        sessions: [...this.sessions.values()]
          .filter((s) => !s.state.end)
          .map((s) => ({ state: s.state, refs: [...s.refs] })),
        answers: [],
        newestEventAt: this.newest,
        answersFrom: this.answersFrom,
      }
      for (const [recordId, entry] of this.answers) {
        if (entry.ref !== undefined) hot.answers.push({ recordId, digest: entry.digest, ref: entry.ref })
      }
      return { hot, point, extra: extra(point) }
    } finally {
      this.gate = undefined
      release()
    }
  }

  async close(): Promise<void> {
    if (this.beforeClose) {
      const hook = this.beforeClose
      this.beforeClose = undefined
      await hook()
    }
    return this.opened ? this.opened.close() : Promise.resolve()
  }

  private restore(hot: HotState<Ref>): void {
    for (const { state, refs } of hot.sessions) {
      this.sessions.set(state.sessionId, { state, refs: [...refs], busy: false })
      if (!state.end) this.openCount++
    }
    for (const { recordId, digest, ref } of hot.answers) this.answers.set(recordId, { digest, ref })
    this.newest = hot.newestEventAt
    this.answersFrom = hot.answersFrom
  }

  private applyStored(event: StoredEvent, ref: Ref): void {
    if (event.event !== 'session.start' && !this.sessions.has(event.session_id)) {
      throw new Error(`log event ${event.record_id} names unknown session ${event.session_id}`)
    }
    this.index(event, ref)
    if (event.input_record_id && event.input_digest) {
      this.answers.set(event.input_record_id, { digest: event.input_digest, ref })
    }
    if (++this.replayed % REPLAY_PRUNE_EVERY === 0) this.pruneAnswers()
  }

  /** Advances the index by one stored event; a session that ended leaves memory (when it can be looked up). */
  private index(event: SessionLifecycleEvent, ref: Ref): IndexedSession<Ref> {
    let indexed = this.sessions.get(event.session_id)
    const state = stateAfter(indexed?.state, event)
    if (indexed) {
      indexed.state = state
      indexed.refs.push(ref)
    } else {
      indexed = { state, refs: [ref], busy: false }
      this.sessions.set(event.session_id, indexed)
      this.openCount++
    }
    if (state.end) {
      this.openCount--
      this.dropClosed(event.session_id)
    }
    if (state.lastEventAt > this.newest) this.newest = state.lastEventAt
    return indexed
  }

  /** Lets go of answers older than the hot horizon (or the retry window), by the newest event's time. */
  private pruneAnswers(): void {
    const horizon = this.hotAnswersMs ?? this.retryWindowMs
    if (horizon !== undefined) this.forgetAnswersBeforeTime(this.newest - horizon)
  }

  private dropClosed(sessionId: string): void {
    const session = this.sessions.get(sessionId)
    if (!session) return
    this.sessions.delete(sessionId)
    this.cacheClosed(sessionId, { state: session.state, refs: session.refs })
  }

  private cacheClosed(sessionId: string, entry: { state: SessionState; refs: Ref[] }): void {
    if (this.replaying) return
    this.closedCache.delete(sessionId)
    this.closedCache.set(sessionId, entry)
    if (this.closedCache.size > CLOSED_CACHE_SIZE) {
      this.closedCache.delete(this.closedCache.keys().next().value as string)
    }
  }

  /** A session not in memory: from the cache, else looked up in the store's index and folded. */
  private async coldSession(sessionId: string): Promise<{ state: SessionState; refs: Ref[] } | undefined> {
    const cached = this.closedCache.get(sessionId)
    if (cached) {
      this.closedCache.delete(sessionId)
      this.closedCache.set(sessionId, cached)
      return cached
    }
    const store = this.store
    const time = timeOf(sessionId)
    const notBefore = Number.isFinite(time) ? { notBefore: time - SESSION_TIME_SKEW_MS } : {}
    let refs: Ref[] = []
    let events: StoredEvent[] | undefined
    const { sessionEvents } = store
    if (sessionEvents) {
      ;({ refs, events } = await this.noticingDamage(() => sessionEvents.call(store, sessionId, notBefore)))
    } else for await (const ref of store.lookup(sessionKey(sessionId), notBefore)) refs.push(ref)
    if (refs.length === 0) {
      const archivedBefore = store.archivedBefore?.()
      if (archivedBefore !== undefined && time <= archivedBefore) throw new SessionArchivedError(sessionId)
      return undefined
    }
    // The session may be hot again by now (it cannot: ids are never reused), or changed: memory wins.
    const hot = this.sessions.get(sessionId)
    if (hot) return hot
    let state: SessionState | undefined
    events ??= await this.readVerified(refs)
    for (const event of events) state = stateAfter(state, event)
    // Read and verified anyway: a timeline request (the usual reason for a cold read) uses them.
    this.cacheTimeline(sessionId, events, refs)
    const entry = { state: state!, refs }
    if (entry.state.end) this.cacheClosed(sessionId, entry)
    return entry
  }

  /** True when every answer to a record_id made at `recordId`'s time is in memory. */
  private answersComplete(recordId: string): boolean {
    if (this.answersFrom === 0) return true
    return timeOf(recordId) >= this.answersFrom
  }

  /** An answer no longer in memory, looked up in the store's index (`r:<record_id>`). */
  private async coldAnswer(recordId: string): Promise<EarlierAnswer | undefined> {
    const store = this.store
    if (this.answersComplete(recordId)) return undefined
    const time = timeOf(recordId)
    const options = Number.isFinite(time) ? { notBefore: time - SESSION_TIME_SKEW_MS } : {}
    for await (const ref of store.lookup(recordKey(recordId), options)) {
      const [stored] = await store.read([ref])
      if (stored && 'input_digest' in stored && stored.input_digest !== undefined) {
        return this.answerOf({ digest: stored.input_digest, ref })
      }
    }
    return undefined
  }

  /**
   * Appends `event` and indexes it, holding `recordId` (if any) as answered while the append is in
   * flight: a concurrent request with the same `record_id` sees the pending answer and waits for it.
   */
  private async write(event: SessionLifecycleEvent, recordId?: string, digest?: string): Promise<void> {
    this.inFlight++
    const entry: AnswerEntry<Ref> | undefined =
      recordId !== undefined && digest !== undefined ? { digest, writing: true } : undefined
    if (entry) this.answers.set(recordId!, entry)
    try {
      let ref: Ref
      try {
        ref = (await this.store.append(event)).ref
      } catch (error) {
        if (entry) {
          if (this.answers.get(recordId!) === entry) this.answers.delete(recordId!)
          entry.writing = false
          entry.failed = { error }
          // Concurrent retries see the same error.
          if (entry.waiters) for (const waiter of entry.waiters.splice(0)) waiter.reject(error)
        }
        throw error
      }
      if (entry) {
        entry.ref = ref
        entry.writing = false
        if (entry.waiters) for (const waiter of entry.waiters.splice(0)) waiter.resolve(ref)
      }
      const indexed = this.index(event, ref)
      if (++this.written % WRITE_PRUNE_EVERY === 0) this.pruneAnswers()
      const { state } = indexed
      if (!state.end) this.schedule.push(deadlineOf(state).at, state.sessionId)
    } finally {
      if (--this.inFlight === 0 && this.drained) {
        const drained = this.drained
        this.drained = undefined
        drained()
      }
    }
  }

  /** The answer's stored position, waiting for the append that stores it when it is in flight. */
  private answerRef(entry: AnswerEntry<Ref>): Promise<Ref> {
    if (entry.failed) return Promise.reject(entry.failed.error)
    if (!entry.writing) return Promise.resolve(entry.ref!)
    return new Promise<Ref>((resolve, reject) => {
      entry.waiters ??= []
      entry.waiters.push({ resolve, reject })
    })
  }

  private answerOf(entry: AnswerEntry<Ref>): EarlierAnswer {
    return {
      digest: entry.digest,
      event: async () => {
        const ref = await this.answerRef(entry)
        const [stored] = await this.store.read([ref])
        return withoutChainFields(stored!) as SessionLifecycleEvent
      },
    }
  }
}

/** The ULID time of an id, or NaN if it is not a ULID. */
function timeOf(id: string): number {
  try {
    return decodeTime(id)
  } catch {
    return Number.NaN
  }
}

/** A stored line's length: the handle's `length` when it has one (a `LogPosition`), else the event's JSON. */
function lineBytesOf(ref: unknown, event: StoredEvent): number {
  if (typeof ref === 'object' && ref !== null && 'length' in ref && typeof ref.length === 'number') {
    return ref.length
  }
  return JSON.stringify(event).length + 1
}
