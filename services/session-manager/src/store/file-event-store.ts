import {
  EventLog,
  LogCorruptError,
  type LogPosition,
  type LogResumePoint,
  type OpenLogOptions,
  readLog,
  type ScrubStatus,
  StorageError,
} from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import {
  type IndexedEventStore,
  type LookupOptions,
  type StoredEvent,
  StoreUnavailableError,
} from './event-store.js'
import { indexKeysOf, recordTimeOf, sessionKey } from './index-keys.js'

/**
 * `StoreUnavailableError.code` of a read that hit a damaged log line (`cause` is the `LogCorruptError`
 * with its file and line); answered 503 `log_integrity`.
 *
 * @example
 * if (err instanceof StoreUnavailableError && err.code === LOG_INTEGRITY) alertOperator(err.message)
 */
export const LOG_INTEGRITY = 'LOG_INTEGRITY'

/**
 * The embedded default store: lifecycle events in the hash-chained JSONL log under the data
 * directory, indexed per segment under the keys of `index-keys.ts`. Opening it recovers the log and
 * replays every stored event (after `resumeAfter`, when a snapshot gives one) through `onEvent`.
 *
 * @example
 * const store = await FileEventStore.open({ dir: config.dataDir }, (event, ref) => service.applyRecovered(event, ref))
 */
export class FileEventStore implements IndexedEventStore<LogPosition, LogResumePoint> {
  private constructor(
    private readonly log: EventLog<SessionLifecycleEvent>,
    private readonly dir: string,
    private readonly fs: OpenLogOptions['fs'],
  ) {}

  static async open(
    options: Omit<OpenLogOptions<SessionLifecycleEvent>, 'onRecord'>,
    onEvent: (event: StoredEvent, ref: LogPosition) => void,
  ): Promise<FileEventStore> {
    const { log } = await EventLog.open<SessionLifecycleEvent>({
      indexKeys: indexKeysOf,
      recordTime: recordTimeOf,
      ...options,
      onRecord: onEvent,
    })
    return new FileEventStore(log, options.dir, options.fs)
  }

  /** Positions of the events indexed under `key` (see `index-keys.ts`), read from the segments' indexes. */
  lookup(key: string, options?: LookupOptions): AsyncIterable<LogPosition> {
    return this.log.lookup(key, options)
  }

  /**
   * One session's positions and events, searching and reading segment by segment and stopping after
   * the segment whose last event is the session's end (every line read is verified as by `read`): an
   * old closed session costs the segments it spans, not one index per segment written after it.
   */
  async sessionEvents(
    sessionId: string,
    options: { notBefore?: number } = {},
  ): Promise<{ refs: LogPosition[]; events: StoredEvent[] }> {
    const refs: LogPosition[] = []
    const events: StoredEvent[] = []
    for await (const { positions } of this.log.lookupBySegment(sessionKey(sessionId), options)) {
      if (positions.length === 0) continue
      refs.push(...positions)
      events.push(...(await this.read(positions)))
      if (events.at(-1)?.event === 'session.end') break
    }
    return { refs, events }
  }

  /**
   * Saves the active segment's index as it is now (`events-NNNNNN.active.idx`), so a start resuming
   * from a snapshot taken up to now reads only the active segment's lines after it. Call after a snapshot.
   */
  persistActiveIndex(): Promise<void> {
    return this.log.persistActiveIndex()
  }

  /** Bytes of the active segment read at open to index the lines before the resume point (see EventLog). */
  activePrefixBytesRead(): Promise<number | undefined> {
    return this.log.activePrefixBytesRead()
  }

  resumePoint(): LogResumePoint {
    return this.log.resumePoint
  }

  archivedBefore(): number | undefined {
    return this.log.archivedBefore
  }

  /** The background scrub's progress, last result and the damaged line it found, if any. */
  get scrubStatus(): ScrubStatus {
    return this.log.scrubStatus
  }

  /** Runs one scrub pass over the sealed segments now (or joins the running one). */
  scrub(): Promise<ScrubStatus> {
    return this.log.scrub()
  }

  /**
   * What `/readyz` says when the scrub found a sealed segment that no longer matches its digest: the
   * file:line and the reason; undefined while nothing was found.
   */
  get integrityProblem(): string | undefined {
    const mismatch = this.log.scrubStatus.mismatch
    if (!mismatch) return undefined
    return (
      `event log segment ${mismatch.file}:${mismatch.line} no longer matches what was written ` +
      `(${mismatch.reason}); run care-sessions verify`
    )
  }

  /**
   * Why writes cannot succeed for now although the store is healthy, for readiness: recovery found a torn
   * tail on a full disk and could not save it yet (it is finished by the first append once space returns).
   */
  get storageNote(): string | undefined {
    const cut = this.log.pendingCut
    if (!cut) return undefined
    return (
      `disk full: the torn tail of ${cut.file} (${cut.bytes} bytes from line ${cut.line}) is not yet saved ` +
      `to ${cut.brokenFile}; reads are served, writes answer 503 until space returns`
    )
  }

  /** False after a failed fsync: nothing more is acknowledged until the service restarts. */
  get healthy(): boolean {
    return !this.log.failed
  }

  append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: LogPosition }> {
    // Not async: on the start path every extra async frame is another promise per request.
    return this.log.append(event).then(
      ({ record, position }) => ({ stored: record, ref: position }),
      (error: unknown) => {
        if (error instanceof StorageError)
          throw new StoreUnavailableError(error.message, error.code, { cause: error })
        throw error
      },
    )
  }

  async read(refs: readonly LogPosition[]): Promise<StoredEvent[]> {
    try {
      return await this.log.read([...refs])
    } catch (error) {
      // A line that no longer matches its hash was damaged on disk after it was written: the store cannot
      // answer from it (503 log_integrity), and an operator must look at file:line.
      if (error instanceof LogCorruptError) {
        throw new StoreUnavailableError(
          `event log is damaged at ${error.file}:${error.line}: ${error.reason}`,
          LOG_INTEGRITY,
          { cause: error },
        )
      }
      // An I/O error reading the disk (EIO, EMFILE...) is an unavailable store (503), not a bug (500).
      const code = (error as { code?: unknown } | null)?.code
      if (typeof code !== 'string') throw error
      throw new StoreUnavailableError(`event log read failed (${code})`, code, { cause: error })
    }
  }

  async *scan(): AsyncIterable<StoredEvent> {
    const options = this.fs ? { fs: this.fs } : {}
    for await (const { record } of readLog<SessionLifecycleEvent>(this.dir, options)) yield record
  }

  head(): { seq: number; hash: string } {
    return this.log.head
  }

  close(): Promise<void> {
    return this.log.close()
  }
}
