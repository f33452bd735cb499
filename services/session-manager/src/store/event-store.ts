import type { SessionLifecycleEvent } from '@care/schemas'

/** A lifecycle event as stored: the event plus its position in the tamper-evident chain. */
export type StoredEvent = SessionLifecycleEvent & { seq: number; prev_hash: string; hash: string }

/**
 * Where lifecycle events are kept. The session service and the HTTP layer only see this
 * interface; whether events live in JSONL files or a database is the store's business.
 * `Ref` is an opaque handle to one stored event (a file position, a sequence number...).
 */
export interface EventStore<Ref = unknown> {
  /** Appends one event; resolves only once it is durable. Rejects with a storage error otherwise. */
  append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: Ref }>
  /** Reads events back by handle, in the order given. */
  read(refs: readonly Ref[]): Promise<StoredEvent[]>
  /** Every stored event in log order, streamed. */
  scan(): AsyncIterable<StoredEvent>
  /** The hash of the newest event (the chain head), for export manifests. */
  head(): { seq: number; hash: string }
  /** Flushes, syncs and releases the store. Idempotent. */
  close(): Promise<void>
}

/**
 * Thrown by a store when an event could not be made durable (disk full, I/O error, failed
 * sync, database unreachable). Nothing was acknowledged; the HTTP layer answers 503.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
