import {
  type LogFileSystem,
  type LogPosition,
  type LogResumePoint,
  nodeFileSystem,
  type OpenLogOptions,
  ResumeMismatchError,
} from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import { EmbeddedSessionRepository } from './embedded-session-repository.js'
import { FileEventStore } from './file-event-store.js'
import { type SessionSnapshot, SnapshotFiles } from './snapshot-files.js'

/**
 * The transparency tree as the embedded store needs it: a log observer, the end of recovery, and its
 * size and root at a given record count (what a snapshot stores).
 *
 * @example
 * const tree: SnapshotTree = TransparencyLog.open({ dataDir, replayStartsAfter: snapshot.tree })
 */
export interface SnapshotTree {
  readonly observer: NonNullable<OpenLogOptions['observer']>
  finishRecovery(records: number): Promise<void>
  /** Size and root (hex) of the tree's first `size` leaves, or undefined if the tree is shorter. */
  rootAt(size: number): { size: number; root: string } | undefined
  close(): Promise<void>
}

/**
 * When the embedded store writes snapshots: after `everyEvents` events, or `intervalMs` after the last
 * one if any event arrived since (checked every second), and at clean shutdown. `enabled: false` turns
 * them off (every start is then a full replay).
 *
 * @example
 * const cadence: SnapshotCadence = { enabled: true, everyEvents: 100_000, intervalMs: 300_000 }
 */
export interface SnapshotCadence {
  enabled: boolean
  everyEvents: number
  intervalMs: number
}

/**
 * Options of {@link openEmbeddedStore}.
 *
 * @example
 * await openEmbeddedStore({ dataDir, log: { repair: false }, snapshots: cadence, retryWindowMs, logger })
 */
export interface EmbeddedStoreOptions {
  dataDir: string
  /** The file layer for the log and the snapshots (tests inject faults). */
  fs?: LogFileSystem
  /** Options of the event log besides its directory, file system, replay and resume point. */
  log?: Omit<OpenLogOptions<SessionLifecycleEvent>, 'dir' | 'fs' | 'onRecord' | 'resumeAfter' | 'observer'>
  snapshots: SnapshotCadence
  retryWindowMs?: number
  /** Answers kept in memory (the rest of the retry window is looked up on disk); see EmbeddedRepositoryOptions. */
  hotAnswersMs?: number
  /** Opens the transparency tree for one attempt (told where the replay starts and the trusted root). */
  openTree?: (replayStartsAfter: { size: number; root?: string } | undefined) => SnapshotTree
  logger?: {
    info(o: object, m: string): void
    warn(o: object, m: string): void
    error(o: object, m: string): void
  }
}

/**
 * The embedded store, opened: the repository (hot state only), the file store under it, the tree, the
 * snapshot writer, and what the start did.
 *
 * @example
 * const { repository, snapshots, facts } = await openEmbeddedStore(options)
 */
export interface EmbeddedStore {
  repository: EmbeddedSessionRepository<LogPosition>
  store: FileEventStore
  tree?: SnapshotTree
  snapshots: Snapshotter
  facts: { events_replayed: number; snapshot?: string; skipped_snapshots: number; open_sessions: number }
}

/**
 * Opens the embedded store from the newest usable snapshot plus the log after it: each snapshot file
 * is checked (format, version, checksum), then the log checks that the snapshot's resume point names
 * one of its records (`ResumeMismatchError` otherwise: a stale snapshot or one from another log). A
 * snapshot that fails either check is logged and the next older one is tried; with none left the
 * whole log is replayed. Slower, never wrong. The clean shutdown writes a snapshot (repository close).
 *
 * @example
 * const { repository } = await openEmbeddedStore({ dataDir, snapshots: { enabled: true, everyEvents: 1e5, intervalMs: 3e5 } })
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const fs = options.fs ?? nodeFileSystem
  const logger = options.logger
  const files = new SnapshotFiles<LogPosition, LogResumePoint>(fs, options.dataDir)
  let skipped = 0
  if (options.snapshots.enabled) {
    for await (const found of files.newestFirst()) {
      if ('problem' in found) {
        skipped++
        logger?.warn({ file: found.path, problem: found.problem }, 'snapshot unusable; trying an older one')
        continue
      }
      try {
        return await attempt(options, files, found.snapshot, found.path, skipped)
      } catch (error) {
        if (!(error instanceof ResumeMismatchError) && !(error instanceof SnapshotReplayError)) throw error
        skipped++
        logger?.warn(
          { file: found.path, err: error },
          'snapshot does not fit the log (stale, from another log, or its state does not continue); trying an older one',
        )
      }
    }
    if (skipped > 0) logger?.warn({ skipped }, 'no usable snapshot: replaying the whole log')
  }
  return attempt(options, files, undefined, undefined, skipped)
}

/** The log after a snapshot's point does not fit the snapshot's state (the snapshot is skipped). */
class SnapshotReplayError extends Error {
  override readonly name = 'SnapshotReplayError'
  constructor(cause: unknown) {
    super(`the log after the snapshot does not continue its state: ${String(cause)}`, { cause })
  }
}

async function attempt(
  options: EmbeddedStoreOptions,
  files: SnapshotFiles<LogPosition, LogResumePoint>,
  snapshot: SessionSnapshot<LogPosition, LogResumePoint> | undefined,
  path: string | undefined,
  skipped: number,
): Promise<EmbeddedStore> {
  const tree = options.openTree?.(
    snapshot
      ? { size: snapshot.point.seq, ...(snapshot.tree ? { root: snapshot.tree.root } : {}) }
      : undefined,
  )
  let store: FileEventStore | undefined
  let events = 0
  try {
    const repository = await EmbeddedSessionRepository.open<LogPosition>(
      async (apply) => {
        store = await FileEventStore.open(
          {
            ...options.log,
            dir: options.dataDir,
            ...(options.fs ? { fs: options.fs } : {}),
            ...(snapshot ? { resumeAfter: snapshot.point } : {}),
            ...(tree ? { observer: tree.observer } : {}),
          },
          (event, ref) => {
            try {
              apply(event, ref)
            } catch (error) {
              // The log after the point does not continue the snapshot's state: do not trust the snapshot.
              if (snapshot) throw new SnapshotReplayError(error)
              throw error
            }
            events++
          },
        )
        await tree?.finishRecovery(store.head().seq)
        return store
      },
      {
        ...(snapshot ? { restore: snapshot.hot } : {}),
        ...(options.retryWindowMs !== undefined ? { retryWindowMs: options.retryWindowMs } : {}),
        ...(options.hotAnswersMs !== undefined ? { hotAnswersMs: options.hotAnswersMs } : {}),
      },
    )
    const snapshots = new Snapshotter(repository, files, options.snapshots, tree, options.logger, store)
    if (snapshot) snapshots.resumedFrom(snapshot.point.seq)
    repository.beforeClose = () => snapshots.close()
    snapshots.start()
    // A long replay is not repeated at the next start: snapshot now (in the background).
    if (options.snapshots.enabled && events >= options.snapshots.everyEvents)
      void snapshots.snapshotNow('after replay')
    return {
      repository,
      store: store!,
      ...(tree ? { tree } : {}),
      snapshots,
      facts: {
        events_replayed: events,
        ...(path ? { snapshot: path } : {}),
        skipped_snapshots: skipped,
        open_sessions: repository.openSessions,
      },
    }
  } catch (error) {
    await tree?.close().catch(() => {})
    await store?.close().catch(() => {})
    throw error
  }
}

/**
 * Writes snapshots of the repository's hot state on the configured cadence, one at a time, and a last
 * one when closed. A failed write is logged and retried at the next tick; it never stops the service.
 *
 * @example
 * const snapshotter = new Snapshotter(repository, files, { enabled: true, everyEvents: 1e5, intervalMs: 3e5 })
 * snapshotter.start()
 */
export class Snapshotter {
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> = Promise.resolve()
  private lastSeq = -1
  private lastEvents = 0
  private lastAt = Date.now()
  private lastWrittenAt: number | undefined
  /** The snapshot seq the active index was last saved for. */
  private indexedSeq = -1
  private closed = false
  /** Snapshots written and failed since start (metrics). */
  written = 0
  failed = 0

  constructor(
    private readonly repository: EmbeddedSessionRepository<LogPosition>,
    private readonly files: SnapshotFiles<LogPosition, LogResumePoint>,
    private readonly cadence: SnapshotCadence,
    private readonly tree?: SnapshotTree,
    private readonly logger?: EmbeddedStoreOptions['logger'],
    /** Saves the active segment's index after each snapshot (a start then skips reading that segment). */
    private readonly activeIndex?: { persistActiveIndex(): Promise<void> },
  ) {}

  /** The start resumed from the snapshot at `seq` (no need to write the same one again). */
  resumedFrom(seq: number): void {
    this.lastSeq = seq
    this.lastWrittenAt = Date.now()
  }

  /** Seconds since the newest snapshot this process wrote or started from (undefined: none yet). */
  get ageSeconds(): number | undefined {
    return this.lastWrittenAt === undefined ? undefined : (Date.now() - this.lastWrittenAt) / 1000
  }

  start(): void {
    if (!this.cadence.enabled || this.timer) return
    this.timer = setInterval(
      () => {
        const events = this.repository.eventsWritten - this.lastEvents
        const due =
          events >= this.cadence.everyEvents ||
          (events > 0 && Date.now() - this.lastAt >= this.cadence.intervalMs)
        if (due) void this.snapshotNow('cadence')
      },
      Math.min(1000, this.cadence.intervalMs),
    )
    this.timer.unref()
  }

  /** Captures and writes a snapshot now (after any one in progress); skipped if nothing changed. */
  snapshotNow(reason: string): Promise<void> {
    this.writing = this.writing.then(() => this.write(reason))
    return this.writing
  }

  /** Stops the cadence and writes the shutdown snapshot. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.writing
    clearInterval(this.timer)
    this.timer = undefined
    if (this.cadence.enabled) await this.snapshotNow('shutdown')
    this.closed = true
    await this.writing
  }

  /** Saves the active segment's index (derived data: a failure only makes the next start read more). */
  private async saveActiveIndex(seq: number): Promise<void> {
    if (!this.activeIndex) return
    try {
      await this.activeIndex.persistActiveIndex()
      this.indexedSeq = seq
    } catch (error) {
      this.logger?.warn({ err: error }, "could not save the active segment's index")
    }
  }

  private async write(reason: string): Promise<void> {
    if (this.closed) return
    const started = performance.now()
    try {
      const events = this.repository.eventsWritten
      const { hot, point, extra } = await this.repository.captureHotState((at) =>
        this.tree?.rootAt((at as LogResumePoint).seq),
      )
      const resumePoint = point as LogResumePoint
      this.lastEvents = events
      this.lastAt = Date.now()
      // Nothing new since the last one (or an empty log: nothing to resume from); the active index
      // is still saved once for it (a start from an older build's snapshot has none).
      if (resumePoint.seq === this.lastSeq || resumePoint.seq === 0) {
        if (resumePoint.seq > 0 && this.indexedSeq !== resumePoint.seq)
          await this.saveActiveIndex(resumePoint.seq)
        return
      }
      const path = await this.files.write({
        point: resumePoint,
        createdAt: new Date().toISOString(),
        ...(extra ? { tree: extra } : {}),
        hot,
      })
      this.lastSeq = resumePoint.seq
      this.lastWrittenAt = Date.now()
      this.written++
      const indexStarted = performance.now()
      await this.saveActiveIndex(resumePoint.seq)
      const indexMs = Math.round(performance.now() - indexStarted)
      this.logger?.info(
        {
          file: path,
          seq: resumePoint.seq,
          open_sessions: hot.sessions.length,
          answers: hot.answers.length,
          reason,
          ms: Math.round(performance.now() - started),
          active_index_ms: indexMs,
        },
        'snapshot written',
      )
    } catch (error) {
      this.failed++
      this.logger?.error({ err: error, reason }, 'could not write a snapshot; will try again')
    }
  }
}
