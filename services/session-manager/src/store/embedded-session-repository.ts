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
import type { EventStore, StoredEvent } from './event-store.js'

const INSERTED: StartInsert = Object.freeze({ kind: 'inserted' })

/**
 * Opens a store, handing every stored event to `apply` in log order before resolving.
 *
 * @example
 * const open: OpenStore<LogPosition> = (apply) => FileEventStore.open({ dir }, apply)
 */
export type OpenStore<Ref> = (apply: (event: StoredEvent, ref: Ref) => void) => Promise<EventStore<Ref>>

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
  /** Set while the answering event is being stored; concurrent retries wait for it. */
  pending?: Promise<Ref>
}

/**
 * The embedded adapter of the {@link SessionRepository} port, for one process: events live in an
 * {@link EventStore} (the JSONL log on disk, or memory in tests); an in-memory index (sessions with
 * their event handles, answered `record_id`s, a deadline heap) is rebuilt from the store on open.
 * Compare-and-set and the unique `record_id` are checked synchronously before the append starts,
 * so they hold across concurrent callers without locks; the log's group commit is untouched.
 *
 * @example
 * const repository = await EmbeddedSessionRepository.open((apply) => FileEventStore.open({ dir }, apply))
 * const sessions = new SessionLifecycleService(repository, { policy, newId })
 */
export class EmbeddedSessionRepository<Ref = unknown> implements SessionRepository {
  readonly tracksExpiry = true
  private readonly sessions = new Map<string, IndexedSession<Ref>>()
  private readonly answers = new Map<string, AnswerEntry<Ref>>()
  private readonly schedule = new ExpirySchedule()
  private openCount = 0
  private newest = 0
  private opened: EventStore<Ref> | undefined

  private constructor() {}

  /** Opens the store through `open`, indexing every stored event. */
  static async open<Ref>(open: OpenStore<Ref>): Promise<EmbeddedSessionRepository<Ref>> {
    const repository = new EmbeddedSessionRepository<Ref>()
    repository.opened = await open((event, ref) => repository.applyStored(event, ref))
    for (const { state } of repository.sessions.values()) {
      if (!state.end) repository.schedule.push(deadlineOf(state).at, state.sessionId)
    }
    return repository
  }

  /** The event store underneath (for health and exports). */
  get store(): EventStore<Ref> {
    return this.opened!
  }

  load(sessionId: string, recordId: string): Promise<{ session?: SessionState; answer?: EarlierAnswer }> {
    const entry = this.answers.get(recordId)
    return Promise.resolve({
      session: this.sessions.get(sessionId)?.state,
      answer: entry ? this.answerOf(entry) : undefined,
    })
  }

  loadSession(sessionId: string): Promise<SessionState | undefined> {
    return Promise.resolve(this.sessions.get(sessionId)?.state)
  }

  async insertStart(event: SessionManagerStartOutput): Promise<StartInsert> {
    const earlier = this.answers.get(event.input_record_id)
    if (earlier) return { kind: 'existing', answer: this.answerOf(earlier) }
    if (this.sessions.has(event.session_id)) return { kind: 'retry' }
    const ref = await this.appendAnswering(event, event.input_record_id, event.input_digest)
    const { state } = this.index(event, ref)
    this.schedule.push(deadlineOf(state).at, state.sessionId)
    return INSERTED
  }

  async appendIfUnchanged(event: SessionLifecycleEvent, expected: SessionState): Promise<boolean> {
    const indexed = this.sessions.get(expected.sessionId)
    if (!indexed || indexed.busy || indexed.state.eventCount !== expected.eventCount) return false
    const recordId = event.event === 'session.start' ? undefined : event.input_record_id
    if (recordId !== undefined && this.answers.has(recordId)) return false
    indexed.busy = true
    try {
      const ref = await this.appendAnswering(
        event,
        recordId,
        'input_digest' in event ? event.input_digest : undefined,
      )
      this.index(event, ref)
    } finally {
      indexed.busy = false
    }
    const { state } = indexed
    if (!state.end) this.schedule.push(deadlineOf(state).at, state.sessionId)
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
    const session = this.sessions.get(sessionId)
    if (!session) return undefined
    const { refs } = session
    const end = Math.min(to, refs.length)
    const events = from < end ? await this.store.read(refs.slice(from, end)) : []
    return { events, total: refs.length }
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
    for (const [recordId, entry] of this.answers) {
      entry.recordTime ??= decodeTime(recordId)
      if (entry.recordTime < recordTime && !entry.pending) this.answers.delete(recordId)
    }
  }

  close(): Promise<void> {
    return this.opened ? this.opened.close() : Promise.resolve()
  }

  private applyStored(event: StoredEvent, ref: Ref): void {
    if (event.event !== 'session.start' && !this.sessions.has(event.session_id)) {
      throw new Error(`log event ${event.record_id} names unknown session ${event.session_id}`)
    }
    this.index(event, ref)
    if (event.input_record_id && event.input_digest) {
      this.answers.set(event.input_record_id, { digest: event.input_digest, ref })
    }
  }

  /** Advances the index by one stored event. */
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
    if (state.end) this.openCount--
    if (state.lastEventAt > this.newest) this.newest = state.lastEventAt
    return indexed
  }

  /**
   * Appends `event`, holding `recordId` (if any) as answered while the append is in flight: a
   * concurrent request with the same `record_id` sees the pending answer and waits for it.
   */
  private async appendAnswering(
    event: SessionLifecycleEvent,
    recordId?: string,
    digest?: string,
  ): Promise<Ref> {
    if (recordId === undefined || digest === undefined) return (await this.store.append(event)).ref
    let settle!: { resolve(ref: Ref): void; reject(error: unknown): void }
    const pending = new Promise<Ref>((resolve, reject) => {
      settle = { resolve, reject }
    })
    pending.catch(() => {}) // only concurrent retries await it; they see the same error
    const entry: AnswerEntry<Ref> = { digest, pending }
    this.answers.set(recordId, entry)
    try {
      const { ref } = await this.store.append(event)
      entry.ref = ref
      entry.pending = undefined
      settle.resolve(ref)
      return ref
    } catch (error) {
      if (this.answers.get(recordId) === entry) this.answers.delete(recordId)
      settle.reject(error)
      throw error
    }
  }

  private answerOf(entry: AnswerEntry<Ref>): EarlierAnswer {
    return {
      digest: entry.digest,
      event: async () => {
        const ref = entry.pending ? await entry.pending : entry.ref!
        const [stored] = await this.store.read([ref])
        return withoutChainFields(stored!) as SessionLifecycleEvent
      },
    }
  }
}
