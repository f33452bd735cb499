import { performance } from 'node:perf_hooks'
import { chainStartOf, manifestIn } from './archive.js'
import { CHAIN_FIELDS, type ChainedRecord, type ChainFields, decodeLine, encodeRecord } from './chain.js'
import { writeCheckpoint } from './checkpoint.js'
import { LogCorruptError, StorageError } from './errors.js'
import {
  errnoOf,
  type LogFileHandle,
  type LogFileSystem,
  nodeFileSystem,
  readFully,
  writeFully,
} from './file-system.js'
import { lineChunks } from './line-scanner.js'
import { acquireLock, type HeldLock } from './lock.js'
import {
  type LogHead,
  type LogPosition,
  type LogResumePoint,
  type PendingCut,
  type RecoverOptions,
  type RecoveryCut,
  type RecoveryReport,
  recoverLog,
} from './recovery.js'
import { LogScrubber, type ScrubOptions, type ScrubStatus } from './scrub.js'
import { passSegment, type SegmentDigest, withCheck, writeDigest } from './segment-digest.js'
import {
  activeIndexPathOf,
  IndexInvalidError,
  indexPathOf,
  type LinePlace,
  loadActiveIndex,
  MemoryIndex,
  readIndexHeader,
  SidecarIndex,
  segmentTail,
  type TimeRange,
  writeFileAtomically,
} from './segment-index.js'
import { eventsDirOf, listSegments, type Segment, segmentOf } from './segments.js'

/**
 * The logger shape the log reports to (pino's `logger.info(obj, msg)` order fits as is).
 *
 * @example
 * const logger: LogLogger = pino()
 */
export interface LogLogger {
  info(o: object, m: string): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
}

/**
 * Options of `EventLog.open`. Only `dir` is required.
 *
 * @example
 * const options: OpenLogOptions = { dir: '/var/lib/care', logger, onRecord: (r) => sessions.apply(r) }
 */
export interface OpenLogOptions<R extends object = Record<string, unknown>> {
  /** Data directory; the log lives in `<dir>/events`, the lock in `<dir>/LOCK`. */
  dir: string
  /** Start a new segment before a write that would make the current one larger (default 64 MiB). */
  maxFileBytes?: number
  /** Cut the log at the first bad line (not only a torn tail), saving the rest to `.broken` files. */
  repair?: boolean
  /** File layer; defaults to the real file system. Tests inject faults here. */
  fs?: LogFileSystem
  logger?: LogLogger
  /** Called for every recovered record, in log order, before `open` resolves. */
  onRecord?: (record: ChainedRecord<R>, position: LogPosition) => void
  /**
   * Called after each durable group commit (one write + one fdatasync) with its record count, bytes
   * and fdatasync duration; for metrics. Must be cheap and must not throw.
   */
  onCommit?: (commit: { records: number; bytes: number; syncSeconds: number }) => void
  /** Sees the exact line bytes of every record (recovered, then durably appended); e.g. a Merkle tree. */
  observer?: LogObserver
  /**
   * Keys under which a record can be found again with `lookup` (e.g. `s:<session_id>`, `r:<record_id>`).
   * Without it `lookup` finds nothing and no index files are written.
   */
  indexKeys?: (record: ChainedRecord<R>) => readonly string[]
  /** Epoch ms of a record, kept per segment as its time range so lookups can skip segments. */
  recordTime?: (record: ChainedRecord<R>) => number
  /**
   * With `indexKeys`: after open, build the missing sidecar indexes of sealed segments in the background
   * (newest first, at most 16 MiB/s). Default true; false leaves every rebuild to the lookup needing it.
   */
  indexMissing?: boolean
  /**
   * Replay (`onRecord`, `observer.recovered`) only the records AFTER this point, e.g. the point stored in
   * a snapshot. Open first checks (one line read and re-hashed) that the point names a record of this log
   * and rejects with `ResumeMismatchError` if not; the caller then opens again with an older point or none
   * (a full replay). Segments before the point's segment are not read at all, so open time does not
   * depend on the history before the point; the active segment's tail is recovered exactly as without it.
   */
  resumeAfter?: LogResumePoint
  /**
   * Run the background scrub: sealed segments are re-read at `bytesPerSecond` and checked line by line
   * and against their digests; see `scrubStatus`. Without it `scrub()` still runs a pass on demand.
   */
  scrub?: ScrubOptions
}

/**
 * Options of `EventLog.lookup`.
 *
 * @example
 * const options: LookupOptions = { newestFirst: true, notBefore: Date.parse('2026-01-01') }
 */
export interface LookupOptions {
  /** Newest record first (default: log order, oldest first). */
  newestFirst?: boolean
  /** Epoch ms: skip segments whose records (by `recordTime`) all lie before it. */
  notBefore?: number
  /** Epoch ms: skip segments whose records (by `recordTime`) all lie after it. */
  notAfter?: number
}

/**
 * Receives the exact bytes of each record line (without the newline), in log order: `recovered` for
 * every record kept by recovery (the buffer is reused after the call returns), `durable` for each group
 * of appended records right after their fdatasync and before their appends resolve, `sealed` when a
 * segment is closed for a new one. Errors thrown by
 * an observer are logged and do not fail appends.
 *
 * @example
 * const observer: LogObserver = { recovered: (line) => tree.append(line), durable: (lines) => lines.forEach((l) => tree.append(l)) }
 */
export interface LogObserver {
  recovered?(line: Buffer): void
  durable?(lines: readonly Buffer[]): void
  /** A segment was sealed (every record before the new segment is durable and was passed to `durable`). */
  sealed?(): void
}

/**
 * What `append` resolves with once the record is on disk.
 *
 * @example
 * const { record, position }: AppendResult = await log.append(event)
 */
export interface AppendResult<R extends object = Record<string, unknown>> {
  record: ChainedRecord<R>
  position: LogPosition
}

interface Pending extends AppendResult<object> {
  line: Buffer
  resolve(result: AppendResult<object>): void
  reject(err: Error): void
}

/** Segment size at which the log starts a new file, unless configured otherwise. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
const NEWLINE = 0x0a
const silentLogger: LogLogger = { info() {}, warn() {}, error() {} }

/**
 * The append-only, hash-chained JSONL event log: where a session event reaches disk. `append` resolves
 * only after the record's bytes are fdatasync'ed; concurrent appends share one write and one fdatasync
 * (group commit). A failed write is rolled back so the next append works once space returns; a failed
 * fdatasync makes the log `failed` until it is reopened, because the kernel may already have dropped
 * the unsynced pages. Opening recovers the log (torn tail cut, chain checked) under an exclusive lock.
 *
 * @example
 * const { log, report } = await EventLog.open({ dir: '/var/lib/care', onRecord: (r) => state.apply(r) })
 * const { record, position } = await log.append(startedEvent)
 * const [again] = await log.read([position])
 * await log.close()
 */
export class EventLog<R extends object = Record<string, unknown>> {
  readonly #fs: LogFileSystem
  readonly #eventsDir: string
  readonly #maxFileBytes: number
  readonly #logger: LogLogger
  readonly #lock: HeldLock
  readonly #onCommit: OpenLogOptions<R>['onCommit']
  #segment: Segment
  #handle: LogFileHandle
  #durableSize: number
  #durableHead: LogHead
  // Where the next appended record goes: ahead of the durable state by everything queued.
  #head: LogHead
  #tailFile: number
  #tailSize: number
  #queue: Pending[] = []
  #flushing: Promise<void> | undefined
  #failure: StorageError | undefined
  #closed = false
  readonly #readers = new Map<number, Reader>()
  #closing: Promise<void> | undefined
  /** A torn-tail cut recovery could not finish (disk full): retried before the next write. */
  #pendingCut: PendingCut | undefined
  readonly #observer: LogObserver | undefined
  /** Where the newest durable record's line ends: the resume point's file and offset. */
  #durableEnd: { file: number; offset: number }
  readonly #indexKeys: ((record: ChainedRecord<R>) => readonly string[]) | undefined
  readonly #recordTime: ((record: ChainedRecord<R>) => number) | undefined
  /** The active segment's index, in memory (undefined without `indexKeys`). */
  #activeIndex: MemoryIndex | undefined
  /** With `resumeAfter` inside the active segment: indexing the lines before the point, in the background. */
  #activePrefix: Promise<void> | undefined
  #activePrefixRange: LogResumePoint | undefined
  #activePrefixRead: number | undefined
  /** Sealed segments whose sidecar index is not written yet: answered from memory meanwhile. */
  readonly #sealedIndexes = new Map<number, MemoryIndex>()
  /** Sidecar indexes loaded (or being rebuilt), by segment number, least recently used first. */
  readonly #sidecars = new Map<number, Promise<SegmentKeyIndex>>()
  /** Time range of each segment whose index was loaded once: lets lookups skip it without loading it. */
  readonly #segmentTimes = new Map<number, TimeRange>()
  /** Segments whose seal-time sidecars are being written (the scrub leaves them to that writer). */
  readonly #sealing = new Set<number>()
  /** Digests known to this process, by segment number (written at seal or read by the scrub). */
  readonly #digests = new Map<number, SegmentDigest>()
  /** The oldest segment still in the events directory (later than 1 once older ones were archived). */
  #firstFile: number
  /** Background work (sidecar writing, prefix indexing) that close() waits for. */
  readonly #background = new Set<Promise<unknown>>()
  readonly #scrubber: LogScrubber
  /** The record before the first kept segment when older ones were archived (from the manifest). */
  #archivedThrough: { seq: number; hash: string } | undefined
  #archivedBefore: number | undefined
  /** Aborted when the log closes: stops background index building. */
  readonly #closeSignal = new AbortController()

  private constructor(init: {
    fs: LogFileSystem
    eventsDir: string
    maxFileBytes: number
    logger: LogLogger
    lock: HeldLock
    segment: Segment
    handle: LogFileHandle
    size: number
    head: LogHead
    pendingCut: PendingCut | undefined
    onCommit: OpenLogOptions<R>['onCommit']
    observer?: LogObserver | undefined
    durableEnd: { file: number; offset: number }
    indexKeys: OpenLogOptions<R>['indexKeys']
    recordTime: OpenLogOptions<R>['recordTime']
    activeIndex: MemoryIndex | undefined
    firstFile: number
    scrub: ScrubOptions | undefined
  }) {
    this.#durableEnd = init.durableEnd
    this.#indexKeys = init.indexKeys
    this.#recordTime = init.recordTime
    this.#activeIndex = init.activeIndex
    this.#firstFile = init.firstFile
    this.#scrubber = new LogScrubber(
      {
        fs: init.fs,
        eventsDir: init.eventsDir,
        sealed: () => ({ first: this.#firstFile, last: this.#segment.index - 1 }),
        before: (first) => (first === this.#firstFile ? this.#archivedThrough : undefined),
        recordTime: init.recordTime as ((record: ChainedRecord) => number) | undefined,
        remember: (file, digest) => this.#digests.set(file, digest),
        sealing: (file) => this.#sealing.has(file),
        warn: (o, m) => init.logger.warn(o, m),
        error: (o, m) => init.logger.error(o, m),
      },
      init.scrub ?? {},
    )
    this.#pendingCut = init.pendingCut
    this.#onCommit = init.onCommit
    this.#observer = init.observer
    this.#fs = init.fs
    this.#eventsDir = init.eventsDir
    this.#maxFileBytes = init.maxFileBytes
    this.#logger = init.logger
    this.#lock = init.lock
    this.#segment = init.segment
    this.#handle = init.handle
    this.#durableSize = init.size
    this.#durableHead = init.head
    this.#head = init.head
    this.#tailFile = init.segment.index
    this.#tailSize = init.size
  }

  /**
   * Locks `<dir>/LOCK`, recovers the log (calling `onRecord` for every record) and returns a log ready
   * to append. Throws `LogLockedError` if a live process holds the lock and `LogCorruptError` for
   * corruption other than a torn tail (unless `repair`).
   *
   * @example
   * const { log, report } = await EventLog.open({ dir, logger })
   * if (report.cuts.length > 0) logger.warn(report, 'log tail was repaired')
   */
  static async open<R extends object = Record<string, unknown>>(
    options: OpenLogOptions<R>,
  ): Promise<{ log: EventLog<R>; report: RecoveryReport }> {
    const started = performance.now()
    const fs = options.fs ?? nodeFileSystem
    const logger = options.logger ?? silentLogger
    const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
    if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 1) {
      throw new RangeError(`maxFileBytes must be a positive integer, got ${maxFileBytes}`)
    }
    const eventsDir = eventsDirOf(options.dir)
    await fs.mkdir(eventsDir)
    // A new events/ directory is only reachable after a power loss once its parent's entry is durable.
    await fs.syncDir(options.dir)
    const lock = await acquireLock(fs, options.dir, logger)
    try {
      const indexKeys = options.indexKeys
      const recordTime = options.recordTime
      // Index the replayed records of one segment at a time; the last one indexed is the active one.
      const building = { file: 0, index: new MemoryIndex() }
      const userOnRecord = options.onRecord as RecoverOptions['onRecord']
      const onRecord: RecoverOptions['onRecord'] =
        indexKeys === undefined
          ? userOnRecord
          : (record, position) => {
              if (position.file !== building.file) {
                building.file = position.file
                building.index = new MemoryIndex()
              }
              const chained = record as ChainedRecord<R>
              addToIndex(building.index, indexKeys(chained), position, recordTime?.(chained), chained)
              userOnRecord?.(record, position)
            }
      const state = await recoverLog(fs, eventsDir, {
        repair: options.repair ?? false,
        onRecord,
        onLine: options.observer?.recovered?.bind(options.observer),
        resumeAfter: options.resumeAfter,
      })
      const firstFile = (await listSegments(fs, eventsDir))[0]?.index ?? 1
      const manifest = await manifestIn(fs, eventsDir)
      let activeIndex: MemoryIndex | undefined
      if (indexKeys) activeIndex = building.file === state.segment.index ? building.index : new MemoryIndex()
      const handle = await fs.open(state.segment.path, 'write')
      const log = new EventLog<R>({
        fs,
        eventsDir,
        maxFileBytes,
        logger,
        lock,
        segment: state.segment,
        handle,
        size: state.size,
        head: state.head,
        pendingCut: state.pending,
        onCommit: options.onCommit,
        observer: options.observer,
        durableEnd: state.headEnd,
        indexKeys,
        recordTime,
        activeIndex,
        firstFile: Math.min(firstFile, state.segment.index),
        scrub: options.scrub,
      })
      if (manifest) {
        log.#archivedThrough = chainStartOf(log.#firstFile, manifest)
        log.#archivedBefore = manifest.through.time_max
      }
      if (options.scrub) log.#scrubber.start()
      if (indexKeys && options.indexMissing !== false) void log.#track(log.#indexMissingSegments())
      const resumed = state.resumedFrom
      if (activeIndex && resumed && resumed.file === state.segment.index && resumed.offset > 0) {
        log.#activePrefixRange = resumed
        log.#activePrefix = log.#track(log.#indexActivePrefix(resumed))
        log.#activePrefix.catch(() => {})
      }
      const report: RecoveryReport = {
        files: state.files,
        records: state.records,
        bytes: state.bytes,
        head: state.head,
        cuts: state.cuts,
        durationMs: Math.round(performance.now() - started),
        ...(resumed ? { resumedFrom: resumed } : {}),
      }
      if (state.pending) {
        report.pendingCut = state.pending.cut
        logger.error(
          { ...state.pending.cut, dir: eventsDir },
          `event log: could not save the torn tail to ${state.pending.cut.brokenFile} (disk full); ` +
            'reads are served, appends fail until space returns',
        )
      }
      if (lock.tookOver) report.staleLock = lock.tookOver
      for (const cut of state.cuts) {
        logger.warn(
          { ...cut, dir: eventsDir },
          `event log: cut ${cut.bytes} bytes (${cut.kind}) into ${cut.brokenFile}`,
        )
      }
      logger.info(
        { records: report.records, files: report.files, bytes: report.bytes, durationMs: report.durationMs },
        'event log recovered',
      )
      return { log, report }
    } catch (err) {
      await lock.release().catch(() => {})
      throw err
    }
  }

  /** The newest durable record (seq 0 and GENESIS_HASH for an empty log). */
  get head(): LogHead {
    return { ...this.#durableHead }
  }

  /**
   * The point after the newest durable record: what a snapshot taken now stores, to be passed back as
   * `resumeAfter` (for an empty log `{ seq: 0, hash: GENESIS_HASH, file: 1, offset: 0 }`, a full replay).
   *
   * @example
   * await writeSnapshot({ state: hotState(), point: log.resumePoint })
   */
  get resumePoint(): LogResumePoint {
    return { ...this.#durableHead, ...this.#durableEnd }
  }

  /**
   * Epoch ms of the newest record archived by `archiveSegments` (everything up to it is in the archive,
   * not in this log); undefined when nothing was archived. `lookup` finds nothing for archived records,
   * so a caller tells "archived" from "not found" by the key's time (e.g. a ULID's) against this.
   *
   * @example
   * if (positions.length === 0 && log.archivedBefore !== undefined && ulidTime(id) <= log.archivedBefore) return gone()
   */
  get archivedBefore(): number | undefined {
    return this.#archivedBefore
  }

  /**
   * The background scrub's progress and findings (see `OpenLogOptions.scrub`): a `mismatch` names the
   * segment file and line that no longer matches what was sealed.
   *
   * @example
   * if (log.scrubStatus.mismatch) res.status(503).json({ code: 'LOG_INTEGRITY', ...log.scrubStatus.mismatch })
   */
  get scrubStatus(): ScrubStatus {
    return this.#scrubber.status
  }

  /**
   * Runs one scrub pass over the sealed segments now (or joins the running one), at the configured rate,
   * and resolves with the status after it.
   *
   * @example
   * const status = await log.scrub()
   * if (status.lastResult === 'mismatch') console.error(status.mismatch)
   */
  scrub(): Promise<ScrubStatus> {
    if (this.#closed) return Promise.reject(new StorageError('LOG_CLOSED', 'event log is closed'))
    return this.#scrubber.pass()
  }

  /**
   * Positions of the records indexed under `key` (by `indexKeys`), oldest first or with `newestFirst`
   * newest first; pass them to `read`. Sealed segments answer from their sidecar index files (loaded and
   * checked against their segment on first use, rebuilt from the segment when missing or invalid), the
   * active segment from memory. `notBefore`/`notAfter` skip whole segments whose time range (by
   * `recordTime`) lies outside; positions inside a kept segment are not filtered by time.
   *
   * @example
   * const positions = []
   * for await (const position of log.lookup(`s:${sessionId}`)) positions.push(position)
   * const timeline = await log.read(positions)
   */
  async *lookup(key: string, options: LookupOptions = {}): AsyncGenerator<LogPosition> {
    for await (const { positions } of this.lookupBySegment(key, options)) yield* positions
  }

  /**
   * `lookup`, one segment at a time: for every segment searched (not skipped by time), its number and
   * the positions found in it (possibly none), in the same order. A caller that knows it has all it
   * needs (e.g. a session's end) stops iterating, and the later segments' indexes are never loaded.
   *
   * @example
   * for await (const { positions } of log.lookupBySegment(`s:${id}`)) if (endsTheSession(positions)) break
   */
  async *lookupBySegment(
    key: string,
    options: LookupOptions = {},
  ): AsyncGenerator<{ file: number; positions: LogPosition[] }> {
    if (this.#closed) throw new StorageError('LOG_CLOSED', 'event log is closed')
    if (!this.#indexKeys) return
    const last = this.#segment.index
    const files: number[] = []
    for (let file = this.#firstFile; file <= last; file++) files.push(file)
    if (options.newestFirst) files.reverse()
    for (const file of files) {
      if (await this.#skipsByTime(file, options)) continue
      const index = await this.#indexOf(file)
      const time = index.time
      if (time && options.notBefore !== undefined && time.max < options.notBefore) continue
      if (time && options.notAfter !== undefined && time.min > options.notAfter) continue
      const places = await index.find(this.#fs, key)
      if (options.newestFirst) places.reverse()
      yield { file, positions: places.map((place) => ({ file, offset: place.offset, length: place.length })) }
    }
  }

  /** The key index of segment `file`: memory for the active (and just-sealed) ones, else the sidecar. */
  async #indexOf(file: number): Promise<SegmentKeyIndex> {
    if (file === this.#segment.index && this.#activeIndex) {
      if (this.#activePrefix) await this.#activePrefixDone()
      return memoryKeyIndex(this.#activeIndex)
    }
    const sealed = this.#sealedIndexes.get(file)
    if (sealed) return memoryKeyIndex(sealed)
    let loading = this.#sidecars.get(file)
    if (loading)
      this.#sidecars.delete(file) // re-inserted below: most recently used last
    else {
      loading = this.#loadSidecar(file).then((index) => {
        this.#segmentTimes.set(file, index.time)
        return index
      })
      // A failure (e.g. EIO) is not cached: the next lookup tries again.
      const mine = loading
      loading.catch(() => {
        if (this.#sidecars.get(file) === mine) this.#sidecars.delete(file)
      })
    }
    this.#sidecars.set(file, loading)
    this.#evictIndexes()
    return loading
  }

  /** Bounded memory however long the history: the least recently used loaded indexes are dropped. */
  #evictIndexes(): void {
    for (const [old, index] of this.#sidecars) {
      if (this.#sidecars.size <= MAX_LOADED_INDEXES) break
      this.#sidecars.delete(old)
      void index.then((i) => i.close()).catch(() => {})
    }
  }

  /**
   * Whether `options` excludes segment `file` by its time range: one already known, else (with a time
   * bound given) the range in its sidecar's header line, read with one pread without loading the index
   * (the header is used only when it names this segment at its current size and last record).
   */
  async #skipsByTime(file: number, options: LookupOptions): Promise<boolean> {
    if (options.notBefore === undefined && options.notAfter === undefined) return false
    let time = this.#segmentTimes.get(file)
    if (time === undefined && file !== this.#segment.index && !this.#sealedIndexes.has(file)) {
      const segment = segmentOf(this.#eventsDir, file)
      const header = await readIndexHeader(this.#fs, indexPathOf(this.#eventsDir, segment), segment)
      if (header) {
        time = header.time
        this.#segmentTimes.set(file, time)
      }
    }
    if (!time) return false
    return (
      (options.notBefore !== undefined && time.max < options.notBefore) ||
      (options.notAfter !== undefined && time.min > options.notAfter)
    )
  }

  /** Loads segment `file`'s sidecar index, checked against the segment; rebuilds it when it is unusable. */
  async #loadSidecar(file: number, bytesPerSecond?: number, signal?: AbortSignal): Promise<SegmentKeyIndex> {
    const segment = segmentOf(this.#eventsDir, file)
    const path = indexPathOf(this.#eventsDir, segment)
    const tail = await segmentTail(this.#fs, segment)
    if (tail) {
      try {
        return sidecarKeyIndex(await SidecarIndex.load(this.#fs, path, segment, tail))
      } catch (err) {
        if (!(err instanceof IndexInvalidError)) throw err
        this.#logger.warn(
          { file: segment.name, reason: err.message },
          'event log: rebuilding a segment index',
        )
      }
    }
    const index = new MemoryIndex()
    const indexKeys = this.#indexKeys!
    const recordTime = this.#recordTime
    const pass = await passSegment(this.#fs, segment, {
      verify: true,
      bytesPerSecond,
      signal,
      recordTime: recordTime as ((record: ChainedRecord) => number) | undefined,
      onRecord: (record, place) => {
        const chained = record as ChainedRecord<R>
        addToIndex(index, indexKeys(chained), place, recordTime?.(chained), chained)
      },
    })
    if (pass.problem) {
      throw new LogCorruptError(segment.name, pass.problem.line, pass.problem.reason, segment.path)
    }
    const state = {
      bytes: pass.digest.bytes,
      lines: pass.digest.lines,
      lastSeq: pass.digest.last.seq,
      lastHash: pass.digest.last.hash,
    }
    try {
      await writeFileAtomically(this.#fs, this.#eventsDir, path, await index.encodeInSlices(segment, state))
      return sidecarKeyIndex(await SidecarIndex.load(this.#fs, path, segment, state))
    } catch (err) {
      // Derived data only: answer from memory this time; the next process rebuilds it again.
      this.#logger.warn({ err, file: segment.name }, 'event log: could not write a rebuilt segment index')
      return memoryKeyIndex(index)
    }
  }

  /**
   * After open, in the background: builds the sidecar index of every sealed segment that has none (e.g.
   * a log written before indexes existed, or a crash before one was written), newest first, reading at
   * most INDEX_BUILD_BYTES_PER_SECOND. A lookup that needs one of them meanwhile waits for it.
   */
  async #indexMissingSegments(): Promise<void> {
    for (let file = this.#segment.index - 1; file >= this.#firstFile && !this.#closed; file--) {
      if (this.#sidecars.has(file) || this.#sealedIndexes.has(file)) continue
      const segment = segmentOf(this.#eventsDir, file)
      try {
        await this.#fs.stat(indexPathOf(this.#eventsDir, segment))
        continue
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') return
      }
      const loading = this.#loadSidecar(file, INDEX_BUILD_BYTES_PER_SECOND, this.#closeSignal.signal)
      this.#sidecars.set(file, loading)
      this.#evictIndexes()
      try {
        this.#segmentTimes.set(file, (await loading).time)
      } catch (err) {
        if (this.#sidecars.get(file) === loading) this.#sidecars.delete(file)
        if (!this.#closed) {
          this.#logger.warn(
            { err, file: segment.name },
            'event log: could not index a segment in the background',
          )
        }
        return
      }
    }
  }

  /** Waits for the active segment's prefix indexing; after a failure (e.g. EIO) starts it again and throws. */
  async #activePrefixDone(): Promise<void> {
    const running = this.#activePrefix
    try {
      await running
    } catch (err) {
      if (this.#activePrefix === running && this.#activePrefixRange) {
        this.#activePrefix = this.#track(this.#indexActivePrefix(this.#activePrefixRange))
        this.#activePrefix.catch(() => {})
      }
      throw err
    }
  }

  /**
   * Indexes the active segment's lines before the resume point (they were not replayed): from its
   * `.active.idx` (written at snapshot time) as far as that covers, reading only the lines after it;
   * an unusable file is logged and the whole prefix is read.
   */
  async #indexActivePrefix(resumed: LogResumePoint): Promise<void> {
    const { file, offset: upTo } = resumed
    const segment = segmentOf(this.#eventsDir, file)
    let earlier = new MemoryIndex()
    let from = 0
    try {
      const saved = await loadActiveIndex(
        this.#fs,
        activeIndexPathOf(this.#eventsDir, segment),
        segment,
        upTo,
      )
      if (saved) ({ index: earlier, from } = saved)
    } catch (err) {
      if (!(err instanceof IndexInvalidError)) throw err
      this.#logger.warn(
        { file: segment.name, reason: err.message },
        "event log: ignoring the active segment's saved index; reading the segment instead",
      )
    }
    this.#activePrefixRead = upTo - from
    const indexKeys = this.#indexKeys!
    const recordTime = this.#recordTime
    const handle = await this.#fs.open(segment.path, 'read')
    try {
      if (from < upTo)
        for await (const { buf, base, end } of lineChunks(handle, undefined, undefined, from)) {
          let start = 0
          while (start < end && base + start < upTo) {
            const newline = buf.indexOf(NEWLINE, start)
            // Parsed, not re-hashed: these lines were checked when written or recovered, and read() re-hashes.
            const record = decodeLine(buf, start, newline, false)
            if (typeof record !== 'string') {
              const chained = record as ChainedRecord<R>
              addToIndex(
                earlier,
                indexKeys(chained),
                { offset: base + start, length: newline - start },
                recordTime?.(chained),
                chained,
              )
            }
            start = newline + 1
          }
          if (base + end >= upTo) break
        }
    } finally {
      await handle.close()
    }
    // The lines before the point end with the point's record (a saved index may have covered more).
    earlier.lastSeq = resumed.seq
    earlier.lastHash = resumed.hash
    const target = file === this.#segment.index ? this.#activeIndex : this.#sealedIndexes.get(file)
    target?.prepend(earlier)
    this.#activePrefix = undefined
  }

  /**
   * Bytes of the active segment read at open to index its lines before the resume point (0 when its
   * saved index covered them all; undefined when open did not resume inside the active segment).
   * Resolves once that indexing is done.
   *
   * @example
   * console.log(`indexed the active prefix reading ${await log.activePrefixBytesRead()} bytes`)
   */
  async activePrefixBytesRead(): Promise<number | undefined> {
    if (this.#activePrefix) await this.#activePrefixDone()
    return this.#activePrefixRead
  }

  /**
   * Writes the active segment's index, as it is now, to `events-NNNNNN.active.idx` (temp, fsync,
   * rename): a later open resuming inside this segment (from a snapshot taken up to now) loads it and
   * reads only the lines after it. Derived data: checked at load, ignored and rebuilt when it does
   * not fit. Call it when a snapshot is written. Does nothing without `indexKeys` or on an empty segment.
   *
   * @example
   * await snapshots.write(state, log.resumePoint)
   * await log.persistActiveIndex()
   */
  async persistActiveIndex(): Promise<void> {
    if (this.#closed) throw new StorageError('LOG_CLOSED', 'event log is closed')
    if (!this.#activeIndex) return
    if (this.#activePrefix) await this.#activePrefixDone()
    // The state is taken synchronously here, where the index matches the durable size exactly; the
    // encoding then runs in slices (appends go on, and it leaves out what they add) and close() waits.
    const segment = this.#segment
    const index = this.#activeIndex
    if (this.#durableSize === 0 || index.lastSeq !== this.#durableHead.seq) return
    const state = {
      bytes: this.#durableSize,
      lines: index.lines,
      lastSeq: this.#durableHead.seq,
      lastHash: this.#durableHead.hash,
    }
    const path = activeIndexPathOf(this.#eventsDir, segment)
    await this.#track(
      index
        .encodeInSlices(segment, state)
        .then((data) => writeFileAtomically(this.#fs, this.#eventsDir, path, data)),
    )
    // Sealed meanwhile: the sealed segment has its own index; this file would only be stale.
    if (segment.index !== this.#segment.index) await this.#fs.unlink(path).catch(() => {})
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#background.add(work)
    const forget = () => this.#background.delete(work)
    work.then(forget, forget)
    return work
  }

  /**
   * After a rotation: computes the sealed segment's digest from its bytes and writes it, then its index
   * (from memory), each atomically. Failures are logged: both are derived data, rebuilt when missing.
   */
  async #writeSealSidecars(segment: Segment, index: MemoryIndex | undefined): Promise<void> {
    try {
      if (this.#activePrefix) await this.#activePrefix.catch(() => {})
      if (index) this.#segmentTimes.set(segment.index, index.time)
      const pass = await passSegment(this.#fs, segment, { verify: false })
      if (pass.problem) {
        this.#logger.error(
          { file: segment.name, ...pass.problem },
          'event log: sealed segment does not read back',
        )
        return
      }
      const digest = withCheck({ ...pass.digest, time: index?.time ?? pass.digest.time })
      await writeDigest(this.#fs, this.#eventsDir, segment, digest)
      this.#digests.set(segment.index, digest)
      if (index) {
        const state = {
          bytes: digest.bytes,
          lines: digest.lines,
          lastSeq: digest.last.seq,
          lastHash: digest.last.hash,
        }
        await writeFileAtomically(
          this.#fs,
          this.#eventsDir,
          indexPathOf(this.#eventsDir, segment),
          await index.encodeInSlices(segment, state),
        )
      }
    } catch (err) {
      this.#logger.warn(
        { err, file: segment.name },
        "event log: could not write the sealed segment's sidecars",
      )
    } finally {
      this.#sealedIndexes.delete(segment.index)
      this.#sealing.delete(segment.index)
      await this.#fs.unlink(activeIndexPathOf(this.#eventsDir, segment)).catch(() => {})
    }
  }

  /**
   * The torn-tail cut recovery could not finish for lack of space, while it is pending (see
   * `RecoveryReport.pendingCut`); undefined once done.
   *
   * @example
   * if (log.pendingCut) readiness.note(`disk full: ${log.pendingCut.bytes} torn bytes not yet saved`)
   */
  get pendingCut(): RecoveryCut | undefined {
    return this.#pendingCut?.cut
  }

  /** True once an fdatasync (or a rollback) failed: every append rejects until the log is reopened. */
  get failed(): boolean {
    return this.#failure !== undefined
  }

  /**
   * Chains `event` (any JSON object without `seq`/`prev_hash`/`hash`; the log imposes no other fields)
   * onto the log. Resolves after fdatasync; rejects with `StorageError` when
   * the record is not durable (then it is also not in the log), with `TypeError` for a bad event.
   *
   * @example
   * const { record } = await log.append({ event: 'session.start', session_id, timestamp, record_id, ...rest })
   */
  append(event: R): Promise<AppendResult<R>> {
    if (this.#closed) return Promise.reject(new StorageError('LOG_CLOSED', 'event log is closed'))
    if (this.#failure) {
      const { code, message } = this.#failure
      return Promise.reject(new StorageError(code, message, { cause: this.#failure }))
    }
    let encoded: ReturnType<typeof encodeRecord>
    try {
      checkEvent(event)
      encoded = encodeRecord(event, this.#head.seq + 1, this.#head.hash)
    } catch (err) {
      return Promise.reject(err)
    }
    const { record, line } = encoded
    if (this.#tailSize > 0 && this.#tailSize + line.length > this.#maxFileBytes) {
      this.#tailFile++
      this.#tailSize = 0
    }
    const position: LogPosition = { file: this.#tailFile, offset: this.#tailSize, length: line.length - 1 }
    this.#tailSize += line.length
    this.#head = { seq: record.seq, hash: record.hash }
    return new Promise<AppendResult<R>>((resolve, reject) => {
      // The log hands back what it wrote: `event` plus the chain fields.
      this.#queue.push({ record, position, line, resolve: resolve as Pending['resolve'], reject })
      this.#flushing ??= this.#flushLoop()
    })
  }

  /**
   * Reads records back by position (e.g. a session's timeline). Before a record is returned its line is
   * re-hashed, and it is checked against its chain neighbours where that costs no extra read: the line
   * right after it (read in the same pread, up to 4 KiB further) must link to it (seq + 1, prev_hash),
   * records read together that are neighbours must link, and in a sealed segment whose digest this
   * process knows (written at seal or checked by the scrub) its seq must lie in the digest's range.
   * Any failure throws `LogCorruptError(file, line)` and nothing is returned.
   *
   * @example
   * const timeline = await log.read(positionsOf(sessionId))
   */
  async read(positions: readonly LogPosition[]): Promise<ChainedRecord<R>[]> {
    if (this.#closed) throw new StorageError('LOG_CLOSED', 'event log is closed')
    const byFile = new Map<number, number[]>()
    for (const [i, position] of positions.entries()) {
      this.#checkReadable(position)
      const list = byFile.get(position.file)
      if (list) list.push(i)
      else byFile.set(position.file, [i])
    }
    const records = new Array<ChainedRecord<R>>(positions.length)
    await Promise.all(
      [...byFile].map(([file, indexes]) =>
        this.#withReader(file, async (handle, segment) => {
          // A session's events sit close together: read each run of nearby lines with one pread.
          indexes.sort((a, b) => positions[a]!.offset - positions[b]!.offset)
          for (const run of nearbyRuns(indexes, positions)) {
            const first = positions[run[0]!]!
            const last = positions[run.at(-1)!]!
            const wanted = last.offset + last.length + 1 - first.offset
            // Also read the line after the last one (up to NEXT_LINE_BYTES, only durable bytes) to link to it.
            const durableRest =
              file === this.#segment.index ? this.#durableSize - first.offset : Number.POSITIVE_INFINITY
            const span = await readFully(
              handle,
              Math.max(wanted, Math.min(wanted + NEXT_LINE_BYTES, durableRest)),
              first.offset,
            )
            const digest = this.#digests.get(file)
            for (const i of run) {
              const { offset, length } = positions[i]!
              const at = offset - first.offset
              const record =
                span.length >= at + length + 1 && span[at + length] === NEWLINE
                  ? decodeLine(span, at, at + length)
                  : undefined
              let reason: string | undefined
              let badOffset = offset
              if (record === undefined || typeof record === 'string') {
                reason = record ?? `position does not hold a whole line (byte offset ${offset})`
              } else if (digest && (record.seq < digest.first.seq || record.seq > digest.last.seq)) {
                reason = `seq ${record.seq} lies outside its segment's digest (${digest.first.seq}..${digest.last.seq})`
              } else if (digest && record.seq === digest.last.seq && record.hash !== digest.last.hash) {
                reason = "the segment's last record does not match its digest"
              } else {
                const next = nextLineProblem(span, at + length + 1, record)
                if (next) {
                  reason = next
                  badOffset = offset + length + 1
                }
              }
              if (reason !== undefined) {
                const line = await lineNumberAt(handle, badOffset)
                throw new LogCorruptError(segment.name, line, reason, segment.path)
              }
              // A line this log wrote (hash-checked above) holds a record of the type it was given.
              records[i] = record as ChainedRecord<R>
            }
          }
        }),
      ),
    )
    // Records read together that are chain neighbours (seq n and n + 1) must link.
    const bySeq = new Map<number, number>()
    for (const [i, record] of records.entries()) bySeq.set(record.seq, i)
    for (const [i, record] of records.entries()) {
      const j = bySeq.get(record.seq - 1)
      if (j === undefined || records[j]!.hash === record.prev_hash) continue
      const segment = segmentOf(this.#eventsDir, positions[i]!.file)
      const line = await this.#withReader(segment.index, (handle) =>
        lineNumberAt(handle, positions[i]!.offset),
      )
      throw new LogCorruptError(
        segment.name,
        line,
        "prev_hash does not match the previous record's hash",
        segment.path,
      )
    }
    return records
  }

  /**
   * Runs `fn` with a read handle on segment `file`. Handles are kept open between reads (closed
   * segments never change and the open one only grows), at most MAX_READERS of them; a handle
   * that failed is dropped so the next read reopens the file.
   */
  async #withReader<T>(
    file: number,
    fn: (handle: LogFileHandle, segment: Segment) => Promise<T>,
  ): Promise<T> {
    const segment = segmentOf(this.#eventsDir, file)
    let reader = this.#readers.get(file)
    if (reader) this.#readers.delete(file) // re-insert below: Map order is least recently used first
    reader ??= { handle: this.#fs.open(segment.path, 'read'), users: 0 }
    this.#readers.set(file, reader)
    reader.users++
    try {
      return await fn(await reader.handle, segment)
    } catch (err) {
      if (this.#readers.get(file) === reader) this.#readers.delete(file)
      reader.broken = true
      throw err
    } finally {
      reader.users--
      if (reader.broken && reader.users === 0) void closeQuietly(reader.handle)
      this.#evictReaders()
    }
  }

  #evictReaders(): void {
    for (const [file, reader] of this.#readers) {
      if (this.#readers.size <= MAX_READERS) return
      if (reader.users > 0) continue
      this.#readers.delete(file)
      void closeQuietly(reader.handle)
    }
  }

  /**
   * Waits for queued appends, fsyncs and releases the lock. Idempotent; appends after it reject.
   *
   * @example
   * process.on('SIGTERM', () => log.close().then(() => process.exit(0)))
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#closeSignal.abort()
    await this.#scrubber.stop()
    while (this.#flushing) await this.#flushing
    while (this.#background.size > 0) await Promise.allSettled([...this.#background])
    const loaded = [...this.#sidecars.values()]
    this.#sidecars.clear()
    await Promise.allSettled(loaded.map((index) => index.then((i) => i.close())))
    const readers = [...this.#readers.values()]
    this.#readers.clear()
    await Promise.all(readers.map((reader) => closeQuietly(reader.handle)))
    try {
      if (!this.#failure) await this.#handle.sync()
    } finally {
      try {
        await this.#handle.close()
      } finally {
        await this.#lock.release()
      }
    }
  }

  #checkReadable(p: LogPosition): void {
    const ints =
      Number.isSafeInteger(p.file) && Number.isSafeInteger(p.offset) && Number.isSafeInteger(p.length)
    const durable =
      p.file < this.#segment.index ||
      (p.file === this.#segment.index && p.offset + p.length < this.#durableSize)
    if (!ints || p.file < 1 || p.offset < 0 || p.length < 1 || !durable) {
      throw new RangeError(`not a position in the durable log: ${JSON.stringify(p)}`)
    }
  }

  async #flushLoop(): Promise<void> {
    // Yield once so appends made in the same tick join the first batch.
    await null
    while (this.#queue.length > 0 && !this.#failure) {
      const batch = this.#queue.splice(0)
      let i = 0
      while (i < batch.length) {
        const file = batch[i]!.position.file
        let j = i
        while (j < batch.length && batch[j]!.position.file === file) j++
        if (!(await this.#writeGroup(batch.slice(i, j), batch.slice(j)))) break
        i = j
      }
    }
    this.#flushing = undefined
  }

  /** Writes one segment's share of a batch: one write, one fdatasync. False if the batch must stop. */
  async #writeGroup(group: Pending[], rest: Pending[]): Promise<boolean> {
    const first = group[0]!
    if (this.#pendingCut && !(await this.#finishPendingCut([...group, ...rest]))) return false
    try {
      if (first.position.file !== this.#segment.index) await this.#rotate(first.position.file)
      if (first.position.offset !== this.#durableSize || first.position.file !== this.#segment.index) {
        throw new StorageError('LOG_FAILED', 'event log position bookkeeping is inconsistent; reopen it')
      }
      const data = group.length === 1 ? first.line : Buffer.concat(group.map((p) => p.line))
      await writeFully(this.#handle, data, this.#durableSize)
    } catch (err) {
      if (err instanceof StorageError) {
        this.#fail(err, [...group, ...rest])
        return false
      }
      await this.#rollBack(err, [...group, ...rest])
      return false
    }
    const syncStarted = performance.now()
    try {
      await this.#handle.datasync()
    } catch (err) {
      const error = new StorageError(
        'FSYNC_FAILED',
        `event log fdatasync failed (${errnoOf(err) ?? 'unknown'}); the log refuses appends until reopened`,
        { cause: err },
      )
      this.#fail(error, [...group, ...rest])
      return false
    }
    const syncSeconds = (performance.now() - syncStarted) / 1000
    const last = group.at(-1)!
    this.#durableSize = last.position.offset + last.line.length
    this.#durableHead = { seq: last.record.seq, hash: last.record.hash }
    this.#durableEnd = { file: last.position.file, offset: this.#durableSize }
    if (this.#activeIndex && this.#indexKeys) {
      for (const p of group) {
        const record = p.record as ChainedRecord<R>
        try {
          addToIndex(
            this.#activeIndex,
            this.#indexKeys(record),
            p.position,
            this.#recordTime?.(record),
            record,
          )
        } catch (err) {
          this.#logger.error(
            { err, seq: record.seq },
            'event log: indexKeys/recordTime failed; record not indexed',
          )
        }
      }
    }
    if (this.#observer?.durable) {
      try {
        this.#observer.durable(group.map((p) => p.line.subarray(0, -1)))
      } catch (err) {
        this.#logger.error({ err }, 'event log: a durable-append observer failed')
      }
    }
    for (const p of group) p.resolve({ record: p.record, position: p.position })
    try {
      this.#onCommit?.({
        records: group.length,
        bytes: this.#durableSize - first.position.offset,
        syncSeconds,
      })
    } catch {
      // An observer's failure must not touch the log: the records are already durable and acknowledged.
    }
    return true
  }

  /**
   * Finishes recovery's torn-tail cut (copy to .broken, truncate) before anything is written after it.
   * On failure the batch is rejected with the errno and the bookkeeping reset; the file is NOT rolled
   * back by truncation (that would drop the torn bytes unsaved), and the next append tries again.
   */
  async #finishPendingCut(entries: Pending[]): Promise<boolean> {
    const pending = this.#pendingCut!
    try {
      const cuts = await pending.finish()
      this.#pendingCut = undefined
      for (const cut of cuts) {
        this.#logger.warn(
          { ...cut, dir: this.#eventsDir },
          `event log: cut ${cut.bytes} bytes (${cut.kind}) into ${cut.brokenFile}`,
        )
      }
      // cutLog reopened and truncated the file; this handle's view of the size is the same (offset).
      return true
    } catch (cause) {
      this.#rejectUnwritten(cause, entries, 'event log: torn tail still not saved')
      return false
    }
  }

  async #rotate(index: number): Promise<void> {
    const next = segmentOf(this.#eventsDir, index)
    const handle = await this.#fs.open(next.path, 'createExclusive')
    try {
      await this.#fs.syncDir(this.#eventsDir)
    } catch (err) {
      await handle.close().catch(() => {})
      throw new StorageError(
        'FSYNC_FAILED',
        `fsync of ${this.#eventsDir} failed after creating ${next.name}`,
        {
          cause: err,
        },
      )
    }
    const previous = this.#handle
    const sealed = { file: this.#segment.index, offset: this.#durableSize, ...this.#durableHead }
    const sealedSegment = this.#segment
    const sealedIndex = this.#activeIndex
    if (sealedIndex) {
      this.#sealedIndexes.set(sealedSegment.index, sealedIndex)
      this.#activeIndex = new MemoryIndex()
    }
    this.#handle = handle
    this.#segment = next
    this.#durableSize = 0
    if (sealed.seq > 0 && sealed.offset > 0) {
      this.#sealing.add(sealedSegment.index)
      void this.#track(this.#writeSealSidecars(sealedSegment, sealedIndex))
    } else this.#sealedIndexes.delete(sealedSegment.index)
    if (sealed.seq > 0) {
      // Only speeds up recovery, so a failure here must not fail the append.
      await writeCheckpoint(this.#fs, this.#eventsDir, sealed).catch((err: unknown) => {
        this.#logger.warn({ err, dir: this.#eventsDir }, 'event log: could not write checkpoint.json')
      })
    }
    this.#logger.info({ file: next.path }, 'event log: started a new segment')
    try {
      this.#observer?.sealed?.()
    } catch (err) {
      this.#logger.error({ err }, 'event log: a segment-seal observer failed')
    }
    // Everything in the previous segment was fdatasync'ed before this group was taken.
    await previous.close().catch(() => {})
  }

  /** A write failed: nothing of this batch (or behind it) is acknowledged; restore the last durable state. */
  async #rollBack(cause: unknown, entries: Pending[]): Promise<void> {
    this.#rejectUnwritten(cause, entries, 'event log write failed')
    try {
      await this.#handle.truncate(this.#durableSize)
      await this.#handle.datasync()
    } catch (err) {
      this.#fail(
        new StorageError('LOG_FAILED', 'event log could not roll back a failed write; reopen it to recover', {
          cause: err,
        }),
        [],
      )
    }
  }

  /**
   * Rejects `entries` and everything queued behind them with the write's errno, and moves the in-memory
   * head back to the last durable record: none of them was acknowledged, and the next append starts there.
   */
  #rejectUnwritten(cause: unknown, entries: Pending[], message: string): void {
    const code = errnoOf(cause) ?? 'WRITE_FAILED'
    const error = new StorageError(code, `event log write failed (${code}); the event was not stored`, {
      cause,
    })
    const rejected = [...entries, ...this.#queue.splice(0)]
    this.#head = this.#durableHead
    this.#tailFile = this.#segment.index
    this.#tailSize = this.#durableSize
    for (const p of rejected) p.reject(error)
    this.#logger.warn({ code, rejected: rejected.length, file: this.#segment.path }, message)
  }

  #fail(error: StorageError, entries: Pending[]): void {
    this.#failure = error
    const rejected = [...entries, ...this.#queue.splice(0)]
    for (const p of rejected) p.reject(error)
    this.#logger.error({ code: error.code, rejected: rejected.length, err: error.cause }, error.message)
  }
}

function checkEvent(event: object): void {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new TypeError('event must be a JSON object')
  }
  for (const field of CHAIN_FIELDS) {
    if (field in event) throw new TypeError(`event must not carry the log's own field "${field}"`)
  }
}

/** A segment's key index, wherever it lives (memory or sidecar file). */
interface SegmentKeyIndex {
  readonly time: TimeRange
  find(fs: LogFileSystem, key: string): Promise<LinePlace[]>
  close(): Promise<void>
}

function memoryKeyIndex(index: MemoryIndex): SegmentKeyIndex {
  return { time: index.time, find: async (_fs, key) => index.find(key), close: async () => {} }
}

function sidecarKeyIndex(index: SidecarIndex): SegmentKeyIndex {
  return { time: index.time, find: (fs, key) => index.find(fs, key), close: () => index.close() }
}

/** Read rate of the background building of missing sidecar indexes after open. */
const INDEX_BUILD_BYTES_PER_SECOND = 16 * 1024 * 1024

/** Sidecar indexes kept loaded at once (each holds every 128th key and one file handle). */
const MAX_LOADED_INDEXES = 32

function addToIndex(
  index: MemoryIndex,
  keys: readonly string[],
  place: LinePlace,
  time: number | undefined,
  record: ChainFields,
): void {
  index.add(keys, place, time)
  index.lines++
  index.lastSeq = record.seq
  index.lastHash = record.hash
}

interface Reader {
  handle: Promise<LogFileHandle>
  users: number
  broken?: boolean
}

/** Read handles kept open at once; older idle ones are closed. */
const MAX_READERS = 16
/** Lines at most this far apart are read with one pread, up to MAX_RUN_BYTES in all. */
const MAX_GAP_BYTES = 64 * 1024
const MAX_RUN_BYTES = 1024 * 1024

/** How far past a run `read` looks for the next line, to check that it links to the last one served. */
const NEXT_LINE_BYTES = 4096

/**
 * The line starting at `span[from]` (when wholly inside `span`) must be a valid line linking to `record`
 * (seq + 1, prev_hash = its hash); returns the reason when not. A line cut off by the span is not checked.
 */
function nextLineProblem(span: Buffer, from: number, record: ChainedRecord): string | undefined {
  const end = span.indexOf(NEWLINE, from)
  if (end === -1) return undefined
  const next = decodeLine(span, from, end)
  if (typeof next === 'string') return `the line after a served record: ${next}`
  if (next.seq !== record.seq + 1 || next.prev_hash !== record.hash) {
    return "the next line's seq/prev_hash do not link to this record"
  }
  return undefined
}

/** Splits offset-sorted position indexes into runs of nearby lines. */
function nearbyRuns(sorted: readonly number[], positions: readonly LogPosition[]): number[][] {
  const runs: number[][] = []
  let run: number[] = []
  let runStart = 0
  let runEnd = 0
  for (const i of sorted) {
    const { offset, length } = positions[i]!
    if (run.length > 0 && (offset - runEnd > MAX_GAP_BYTES || offset + length - runStart > MAX_RUN_BYTES)) {
      runs.push(run)
      run = []
    }
    if (run.length === 0) runStart = offset
    run.push(i)
    runEnd = Math.max(runEnd, offset + length + 1)
  }
  if (run.length > 0) runs.push(run)
  return runs
}

/** The 1-based line starting at byte `offset` (counts the newlines before it; only on the error path). */
async function lineNumberAt(handle: LogFileHandle, offset: number): Promise<number> {
  let line = 1
  const chunk = Buffer.allocUnsafe(Math.min(offset, 1024 * 1024))
  for (let at = 0; at < offset; ) {
    const read = await handle.read(chunk, 0, Math.min(chunk.length, offset - at), at)
    if (read === 0) break
    for (let i = chunk.indexOf(NEWLINE); i !== -1 && i < read; i = chunk.indexOf(NEWLINE, i + 1)) line++
    at += read
  }
  return line
}

async function closeQuietly(handle: Promise<LogFileHandle>): Promise<void> {
  try {
    await (await handle).close()
  } catch {
    // Nothing useful to do: the handle was only ever read from.
  }
}
