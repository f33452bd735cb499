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
 * Options of an index lookup: newest first instead of log order, and a time range (epoch ms of the
 * events' `timestamp`) that lets the store skip whole segments.
 *
 * @example
 * const options: LookupOptions = { newestFirst: true, notBefore: Date.parse('2026-11-01') }
 */
export interface LookupOptions {
  newestFirst?: boolean
  notBefore?: number
  notAfter?: number
}

/**
 * A store that also finds events again by index key (`s:<session_id>`, `r:<record_id>`..., see
 * `index-keys.ts`) and names the point after its newest durable event, so the embedded repository can
 * keep only hot state in memory, read closed sessions from disk and resume from a snapshot.
 *
 * @example
 * for await (const ref of store.lookup(sessionKey(id))) refs.push(ref)
 */
export interface IndexedEventStore<Ref = unknown, Point = unknown> extends EventStore<Ref> {
  /** Handles of the events indexed under `key`, in log order (or newest first). */
  lookup(key: string, options?: LookupOptions): AsyncIterable<Ref>
  /** Where a replay would resume after the newest durable event (what a snapshot taken now stores). */
  resumePoint(): Point
  /**
   * Epoch ms of the newest archived event (retention moved segments up to it away), or undefined if
   * nothing was archived. A session whose id time is at or before this and that is not found was archived.
   */
  archivedBefore?(): number | undefined
  /**
   * Set while the store knows its log is damaged (a background scrub found a line that no longer matches
   * what was written): caches of verified events must not be trusted then. Optional: undefined when unknown.
   */
  readonly integrityProblem?: string | undefined
  /**
   * One session's events and their handles in log order, as `lookup(sessionKey(id), options)` finds
   * them and `read` returns them, but the store may stop searching once it has read the session's end
   * event (later segments are not searched). Optional: the repository falls back to `lookup` + `read`.
   */
  sessionEvents?(
    sessionId: string,
    options?: { notBefore?: number },
  ): Promise<{ refs: Ref[]; events: StoredEvent[] }>
}

/**
 * Thrown when a session's events were moved out of the live log by retention (`care-sessions archive`):
 * the session existed but is no longer served from this data directory. Answered 410 `session_archived`.
 *
 * @example
 * if (err instanceof SessionArchivedError) console.log(`${err.sessionId} is in the archive`)
 */
export class SessionArchivedError extends Error {
  override readonly name = 'SessionArchivedError'
  constructor(readonly sessionId: string) {
    super(`the events of session ${sessionId} were archived (retention); read them from the archive`)
  }
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
