import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  EventLog,
  eventsDirOf,
  LogCorruptError,
  type LogPosition,
  type OpenLogOptions,
  readLog,
  StorageError,
} from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import { type EventStore, type StoredEvent, StoreUnavailableError } from './event-store.js'
import { indexKeysOf, START_KEY } from './index-keys.js'

/**
 * Options of {@link FileEventStore.lookup}, as the contract of issue #12 names them.
 *
 * @example
 * store.lookup('u:user-42', { newestFirst: true, notBefore: Date.parse('2026-03-01') })
 */
export interface LookupOptions {
  newestFirst?: boolean
  /** Epoch ms: records older than this are skipped. */
  notBefore?: number
  /** Epoch ms: records newer than this are skipped. */
  notAfter?: number
}

const SEGMENT_FILE = /^events-(\d{6,})\.jsonl$/

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
 * directory. Opening it recovers the log and replays every stored event through `onEvent`.
 *
 * @example
 * const store = await FileEventStore.open({ dir: config.dataDir }, (event, ref) => service.applyRecovered(event, ref))
 */
export class FileEventStore implements EventStore<LogPosition> {
  private constructor(
    private readonly log: EventLog<SessionLifecycleEvent>,
    private readonly dir: string,
    private readonly fs: OpenLogOptions['fs'],
  ) {}

  static async open(
    options: Omit<OpenLogOptions<SessionLifecycleEvent>, 'onRecord'>,
    onEvent: (event: StoredEvent, ref: LogPosition) => void,
  ): Promise<FileEventStore> {
    const { log } = await EventLog.open<SessionLifecycleEvent>({ ...options, onRecord: onEvent })
    return new FileEventStore(log, options.dir, options.fs)
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

  async append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: LogPosition }> {
    try {
      const { record, position } = await this.log.append(event)
      return { stored: record, ref: position }
    } catch (error) {
      if (error instanceof StorageError)
        throw new StoreUnavailableError(error.message, error.code, { cause: error })
      throw error
    }
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

  /**
   * Positions of the events indexed under `key` (see index-keys.ts), oldest first or newest first.
   *
   * TEMPORARY: replaced by the sidecar index of issue #12 at merge (`EventLog.lookup`). Until then this
   * scans the segment files, newest segment first when `newestFirst`, holding only one segment's matching
   * positions at a time (never a heap that grows with history). Positions are read back with `read`,
   * which re-hashes every line.
   */
  async *lookup(key: string, options: LookupOptions = {}): AsyncIterable<LogPosition> {
    const dir = eventsDirOf(this.dir)
    const segments = (await readdir(dir).catch(() => [] as string[]))
      .map((name) => SEGMENT_FILE.exec(name))
      .filter((match) => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => (options.newestFirst ? b - a : a - b))
    const needle = Buffer.from(key === START_KEY ? '"session.start"' : JSON.stringify(key.slice(2)))
    const notBefore = options.notBefore ?? Number.NEGATIVE_INFINITY
    const notAfter = options.notAfter ?? Number.POSITIVE_INFINITY
    for (const file of segments) {
      const bytes = await readFile(join(dir, `events-${String(file).padStart(6, '0')}.jsonl`))
      const found: LogPosition[] = []
      // Only lines that contain the key's value can match: find those with a byte search, then parse.
      let at = bytes.indexOf(needle)
      while (at >= 0) {
        const start = bytes.lastIndexOf(0x0a, at) + 1
        const newline = bytes.indexOf(0x0a, at)
        if (newline < 0) break // a line still being written
        try {
          const record = JSON.parse(bytes.toString('utf8', start, newline)) as SessionLifecycleEvent
          const time = Date.parse(record.timestamp)
          if (time >= notBefore && time <= notAfter && indexKeysOf(record).includes(key))
            found.push({ file, offset: start, length: newline - start })
        } catch {
          // A damaged line is reported by `read` (which re-hashes) or by verify, not by a lookup.
        }
        at = bytes.indexOf(needle, newline + 1)
      }
      if (options.newestFirst) found.reverse()
      yield* found
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
