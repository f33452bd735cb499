import type { SessionLifecycleEvent } from '@care/schemas'
import { createIdFactory } from '../../ids/id-factory.js'
import { EmbeddedSessionRepository } from '../../store/embedded-session-repository.js'
import { type EventStore, type StoredEvent, StoreUnavailableError } from '../../store/event-store.js'
import { type SessionLifecycleOptions, SessionLifecycleService } from '../session-lifecycle.js'

/** An EventStore in memory, for domain tests: refs are indexes; `failAppends` simulates a full disk. */
export class MemoryEventStore implements EventStore<number> {
  readonly events: StoredEvent[] = []
  failAppends = false

  async append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: number }> {
    if (this.failAppends) throw new StoreUnavailableError('disk full (simulated)', 'ENOSPC')
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

  async close(): Promise<void> {}

  /** Opens this store for a (re)starting service: replays every event, like recovery from disk. */
  opener() {
    return async (apply: (event: StoredEvent, ref: number) => void) => {
      this.events.forEach((event, index) => {
        apply(event, index)
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
