import { EventLog, type LogPosition, type OpenLogOptions, readLog, StorageError } from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import { type EventStore, type StoredEvent, StoreUnavailableError } from './event-store.js'

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
