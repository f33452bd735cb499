import type { SessionLifecycleEvent } from '@care/schemas'
import { createIdFactory } from '../../ids/id-factory.js'
import { EmbeddedSessionRepository } from '../../store/embedded-session-repository.js'
import {
  type IndexedEventStore,
  type LookupOptions,
  type StoredEvent,
  StoreUnavailableError,
} from '../../store/event-store.js'
import { indexKeysOf, recordTimeOf } from '../../store/index-keys.js'
import { type SessionLifecycleOptions, SessionLifecycleService } from '../session-lifecycle.js'

/**
 * An EventStore in memory, for domain tests: refs are indexes; `failAppends` simulates a full disk;
 * `holdCommits()` keeps appends waiting, like a group commit in progress, until the test calls
 * `commit()` (they are stored, in order) or `failCommit()` (none is stored, each rejects). `lookup`
 * answers from the same index keys as the file store; `lookups` counts them; `archivedBefore` fakes retention.
 */
export class MemoryEventStore implements IndexedEventStore<number, { seq: number }> {
  readonly events: StoredEvent[] = []
  failAppends = false
  lookups = 0
  archived: number | undefined
  private held: { commit(): void; fail(error: unknown): void }[] | undefined

  /** From now on appends wait for `commit()` or `failCommit()`. */
  holdCommits(): void {
    this.held ??= []
  }

  /** How many appends are waiting for the held commit. */
  get waiting(): number {
    return this.held?.length ?? 0
  }

  /** Stores every waiting append (in arrival order) and stops holding. */
  commit(): void {
    const held = this.held ?? []
    this.held = undefined
    for (const append of held) append.commit()
  }

  /** Fails every waiting append (nothing is stored) and stops holding. */
  failCommit(error: unknown = new StoreUnavailableError('group commit failed (simulated)', 'EIO')): void {
    const held = this.held ?? []
    this.held = undefined
    for (const append of held) append.fail(error)
  }

  async append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: number }> {
    if (this.failAppends) throw new StoreUnavailableError('disk full (simulated)', 'ENOSPC')
    const held = this.held
    if (held) {
      await new Promise<void>((commit, fail) => {
        held.push({ commit, fail })
      })
    }
    const seq = this.events.length + 1
    const stored = { ...event, seq, prev_hash: String(seq - 1), hash: String(seq) } as StoredEvent
    this.events.push(stored)
    return { stored, ref: seq - 1 }
  }

  async read(refs: readonly number[]): Promise<StoredEvent[]> {
    return refs.map((ref) => this.events[ref]!)
  }

  async *scan(): AsyncIterable<StoredEvent> {
    yield* this.events
  }

  head(): { seq: number; hash: string } {
    return { seq: this.events.length, hash: String(this.events.length) }
  }

  async *lookup(key: string, options: LookupOptions = {}): AsyncIterable<number> {
    this.lookups++
    const found: number[] = []
    this.events.forEach((event, index) => {
      const time = recordTimeOf(event)
      if (options.notBefore !== undefined && time < options.notBefore) return
      if (options.notAfter !== undefined && time > options.notAfter) return
      if (indexKeysOf(event).includes(key)) found.push(index)
    })
    yield* options.newestFirst ? found.reverse() : found
  }

  resumePoint(): { seq: number } {
    return { seq: this.events.length }
  }

  archivedBefore(): number | undefined {
    return this.archived
  }

  async close(): Promise<void> {}

  /** Opens this store for a (re)starting service: replays every event (after `after`), like recovery from disk. */
  opener(after?: { seq: number }) {
    return async (apply: (event: StoredEvent, ref: number) => void) => {
      this.events.forEach((event, index) => {
        if (after === undefined || index >= after.seq) apply(event, index)
      })
      return this
    }
  }
}

/** A clock tests move by hand. */
export class ManualClock {
  constructor(public time = Date.parse('2026-03-01T12:00:00.000Z')) {}
  now = (): number => this.time
  advance(ms: number): void {
    this.time += ms
  }
}

/**
 * The lifecycle over the embedded repository on `store` (no real timers), recovered: a (re)start
 * of the service on the events `store` holds.
 *
 * @example
 * const service = await bootMemorySessions(new MemoryEventStore(), { policy, clock })
 */
export async function bootMemorySessions(
  store: MemoryEventStore,
  options: Omit<SessionLifecycleOptions, 'newId'>,
): Promise<SessionLifecycleService> {
  const service = await createMemorySessions(store, options)
  await service.recover()
  return service
}

/** The same, not yet recovered. */
export async function createMemorySessions(
  store: MemoryEventStore,
  options: Omit<SessionLifecycleOptions, 'newId'>,
): Promise<SessionLifecycleService> {
  const repository = await EmbeddedSessionRepository.open(store.opener())
  return new SessionLifecycleService(repository, { newId: createIdFactory(), timers: false, ...options })
}
