import { join } from 'node:path'
import type { LogPosition, OpenLogOptions, ScrubStatus } from '@care/event-log'
import { type AuditSource, logAuditSource, storeAuditSource } from './audit/audit-source.js'
import type { SessionManagerConfig } from './config.js'
import { createIdFactory } from './ids/id-factory.js'
import type { PoolCounts } from './observability/session-telemetry.js'
import { createToolPool } from './postgres/database.js'
import { unavailable } from './postgres/pg-errors.js'
import { PostgresEventStore } from './postgres/postgres-event-store.js'
import { PostgresSessionRepository } from './postgres/postgres-session-repository.js'
import { schemaNames } from './postgres/schema-names.js'
import { PostgresTreeFeed, PostgresTreeStorage } from './postgres/tree-feed.js'
import { TreeHoleCheck } from './postgres/tree-holes.js'
import { postgresTreeAuditSource, postgresTreeLines } from './postgres/tree-lines.js'
import { loadPersistedTree } from './postgres/tree-table.js'
import { LookupReviewCatalog, type ReviewCatalog } from './review/catalog.js'
import { PostgresReviewCatalog } from './review/postgres-catalog.js'
import {
  type Clock,
  type LifecycleLogger,
  type LifecycleObserver,
  type SessionLifecycleOptions,
  SessionLifecycleService,
} from './sessions/session-lifecycle.js'
import type { SessionState } from './sessions/session-repository.js'
import type { EmbeddedSessionRepository } from './store/embedded-session-repository.js'
import { openEmbeddedStore } from './store/embedded-store.js'
import { StoreUnavailableError } from './store/event-store.js'
import type { TransparencySettings } from './transparency/config.js'
import { newestCheckpointMismatch } from './transparency/newest-checkpoint.js'
import { CHECKPOINTS_DIR, TransparencyLog } from './transparency/transparency-log.js'

/**
 * The configured store, opened: the lifecycle over its repository, where exports read, and health.
 *
 * @example
 * const { sessions, audit, healthy, close } = await openBackend(config)
 */
export interface Backend {
  /** The session lifecycle over the store's repository, recovered and sweeping. */
  sessions: SessionLifecycleService<SessionState>
  /** Where `GET /export` reads events. */
  audit: AuditSource
  /** What the review page (`/review`) reads: sessions by user, id, date and end reason, and their events. */
  review: ReviewCatalog
  /** False once storage failed in a way that needs a restart (a failed fsync). */
  healthy(): boolean
  /** Why writes fail for now while the service stays ready (e.g. a disk-full torn-tail cut pending). */
  storageNote(): string | undefined
  /** A damaged sealed segment the background scrub found (file:line), for `/readyz`; embedded store only. */
  integrityProblem?(): string | undefined
  /** The embedded store's hot-state sizes, snapshot age and scrub status, for `/readyz` detail and metrics. */
  storeStatus?(): EmbeddedStoreStatus
  /** PostgreSQL pool counters, for metrics; undefined on the embedded store. */
  pool?: PoolCounts
  /** The store's Merkle tree and signed checkpoints (either store); undefined when turned off. */
  transparency?: TransparencyLog
  /** PostgreSQL store with a resumed tree: the background check for holes in `tree_nodes` (status, `done`). */
  treeHoleCheck?: TreeHoleCheck
  /** What recovery found, for the "ready" log line. */
  facts: Record<string, unknown>
  /** Stops the lifecycle and releases the store (flush, sync, lock). Idempotent. */
  close(): Promise<void>
}

/**
 * What the embedded store reports about itself: sessions and answers held in memory, the age of the
 * newest snapshot, and the background scrub (progress, last result, mismatch).
 *
 * @example
 * const { snapshot_age_seconds, scrub } = backend.storeStatus?.() ?? {}
 */
export interface EmbeddedStoreStatus {
  hot_sessions: number
  hot_answers: number
  snapshot_age_seconds?: number
  scrub?: ScrubStatus
}

/**
 * What `openBackend` needs besides the configuration.
 *
 * @example
 * await openBackend(config, { logger, stopRequested: () => stopping })
 */
export interface OpenBackendOptions {
  logger?: LifecycleLogger
  clock?: Clock
  /** Asked between attempts to reach an unavailable database; true stops waiting. */
  stopRequested?: () => boolean
  /** Told why the store is not open yet (e.g. the database is unreachable), and `undefined` once it is. */
  onWaiting?: (reason: string | undefined) => void
  /** Called after each durable group commit of the embedded log (metrics). */
  onCommit?: OpenLogOptions['onCommit']
  /** Told about every lifecycle event written, on either store (timeout counters, spans). */
  lifecycleObserver?: LifecycleObserver
  /** Checkpoint key and cadence of the store's Merkle tree; `enabled: false` turns it off. */
  transparency?: TransparencySettings
}

/**
 * Answers to record_ids of the last 10 minutes stay in memory (most retries come within seconds); older
 * ones inside the retry window are read back through the log's `r:<record_id>` index.
 */
export const HOT_ANSWERS_MS = 10 * 60_000

/** How long to wait before trying an unreachable database again. */
export const DATABASE_RETRY_MS = 1000

/**
 * Opens the store `config` names (the embedded JSONL log, or PostgreSQL), builds the session
 * lifecycle over its repository and recovers it (sessions that expired while down are ended).
 * An unreachable database is waited for; an unsafe one, a corrupt log or a held lock throws.
 *
 * @example
 * const backend = await openBackend(loadConfig(), { logger })
 * const app = createSessionManagerApp({ sessions: () => backend.sessions, audit: () => backend.audit, config, logger })
 */
export async function openBackend(
  config: SessionManagerConfig,
  options: OpenBackendOptions = {},
): Promise<Backend> {
  const { logger } = options
  const lifecycleOptions: SessionLifecycleOptions = {
    policy: config.policy,
    newId: createIdFactory(),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(logger ? { logger } : {}),
    ...(options.lifecycleObserver ? { observer: options.lifecycleObserver } : {}),
  }
  const { store } = config
  if (store.kind === 'postgres') {
    // An unreachable database is waited for (readyz says not_ready); an unsafe one stops the start.
    return waitForDatabase(async () => {
      const repository = await PostgresSessionRepository.open({
        database: { url: store.url, poolSize: store.poolSize },
        schema: store.schema,
        ownerRole: store.ownerRole,
        logger,
      })
      const tree = await openPostgresTree(repository, store, config.dataDir, options)
      return recovered(repository, lifecycleOptions, {
        // With a tree, exports carry the tree's lines (the embedded log's form) so they can be proven.
        audit: tree
          ? postgresTreeAuditSource(repository.pool, schemaNames(store.schema))
          : storeAuditSource(PostgresEventStore.over(repository.pool, store.schema)),
        review: new PostgresReviewCatalog(repository.pool, schemaNames(store.schema)),
        healthy: () => true,
        storageNote: () => undefined,
        pool: repository.pool,
        ...(tree ? { transparency: tree.tlog, stopFeed: tree.stop } : {}),
        ...(tree?.holes ? { treeHoleCheck: tree.holes } : {}),
        facts: { store: 'postgres', schema: store.schema, ...(tree ? { tree_size: tree.tlog.size } : {}) },
      })
    }, options)
  }
  const transparencySettings =
    options.transparency && options.transparency.enabled !== false ? options.transparency : undefined
  const embedded = await openEmbeddedStore({
    dataDir: config.dataDir,
    log: {
      repair: config.repair,
      maxFileBytes: config.maxLogFileBytes,
      ...(config.scrubBytesPerSecond > 0 ? { scrub: { bytesPerSecond: config.scrubBytesPerSecond } } : {}),
      ...(logger ? { logger } : {}),
      ...(options.onCommit ? { onCommit: options.onCommit } : {}),
    },
    snapshots: config.snapshots,
    retryWindowMs: config.policy.retryWindowMs,
    hotAnswersMs: Math.min(config.policy.retryWindowMs, HOT_ANSWERS_MS),
    ...(transparencySettings
      ? {
          openTree: (replayStartsAfter) =>
            TransparencyLog.open({
              dataDir: config.dataDir,
              ...transparencySettings,
              logger,
              ...(replayStartsAfter ? { replayStartsAfter } : {}),
            }),
        }
      : {}),
    ...(logger ? { logger } : {}),
  })
  const { repository, store: opened, snapshots } = embedded
  const transparency = embedded.tree as TransparencyLog | undefined
  return recovered(repository, lifecycleOptions, {
    // The log read directly (lock-free, chain-checked), so exports read lines back by position.
    audit: logAuditSource(config.dataDir),
    review: new LookupReviewCatalog(opened),
    healthy: () => opened.healthy,
    storageNote: () => opened.storageNote,
    integrityProblem: () => opened.integrityProblem,
    storeStatus: () => ({
      hot_sessions: repository.hotSessions,
      hot_answers: repository.hotAnswers,
      ...(snapshots.ageSeconds !== undefined
        ? { snapshot_age_seconds: Math.round(snapshots.ageSeconds) }
        : {}),
      scrub: opened.scrubStatus,
    }),
    ...(transparency ? { transparency } : {}),
    facts: { store: 'file', ...embedded.facts },
  })
}

async function recovered(
  repository: EmbeddedSessionRepository<LogPosition> | PostgresSessionRepository,
  options: SessionLifecycleOptions,
  rest: Pick<
    Backend,
    | 'audit'
    | 'review'
    | 'healthy'
    | 'storageNote'
    | 'facts'
    | 'pool'
    | 'transparency'
    | 'integrityProblem'
    | 'storeStatus'
    | 'treeHoleCheck'
  > & {
    stopFeed?: () => Promise<void>
  },
): Promise<Backend> {
  const { stopFeed, ...opened } = rest
  const sessions = new SessionLifecycleService<SessionState>(repository, options)
  try {
    await sessions.recover()
  } catch (error) {
    await sessions.close().catch(() => {})
    await stopFeed?.().catch(() => {})
    await rest.transparency?.close().catch(() => {})
    throw error
  }
  return {
    sessions,
    ...opened,
    close: async () => {
      await sessions.close()
      await stopFeed?.()
      await rest.transparency?.close()
    },
  }
}

/**
 * The PostgreSQL store's Merkle tree, when a checkpoint key is configured and the tree is not turned
 * off: a `TransparencyLog` whose hashes live in the `tree_nodes` table (only the compact range in
 * memory; proofs read the table) and whose signed checkpoints go to
 * `<dataDir>/checkpoints/` (outside the database, so a database restored from an older dump is caught
 * at the next start), fed from the committed rows.
 */
async function openPostgresTree(
  repository: PostgresSessionRepository,
  store: { url?: string; schema: string },
  dataDir: string,
  options: OpenBackendOptions,
): Promise<{ tlog: TransparencyLog; stop: () => Promise<void>; holes?: TreeHoleCheck } | undefined> {
  const settings = options.transparency
  // Without a checkpoint key nothing could be proven against a signed root: keep no tree (and touch no
  // data directory, which a PostgreSQL deployment may not have).
  if (!settings || settings.enabled === false || settings.signer === undefined) return undefined
  const { logger } = options
  // Its own connections: the feed reads the last committed rows after the lifecycle closed its pool.
  const pool = createToolPool(store.url, 2)
  const names = schemaNames(store.schema)
  let loaded: Awaited<ReturnType<typeof loadPersistedTree>>
  try {
    // The persisted tree is resumed after a cheap check (its last leaf against its row, its root, the
    // newest checkpoint at or below its size); otherwise it is rebuilt from the rows.
    loaded = await loadPersistedTree(pool, names, async (tree) =>
      newestCheckpointMismatch(tree, join(dataDir, CHECKPOINTS_DIR), settings.verifier),
    )
  } catch (error) {
    await pool.end().catch(() => {})
    await repository.close().catch(() => {})
    throw unavailable(error)
  }
  if ('rebuild' in loaded) {
    logger?.info({ reason: loaded.rebuild }, 'transparency: rebuilding the tree from the rows')
  } else {
    logger?.info({ size: loaded.head.size }, 'transparency: resuming the persisted tree')
  }
  const storage = new PostgresTreeStorage(pool, names, 'store' in loaded ? loaded.store : undefined)
  const tlog = TransparencyLog.open({
    dataDir,
    ...settings,
    treeStorage: storage,
    // A persisted tree that passed the checks is continued from its head: only rows after it are hashed.
    ...('store' in loaded
      ? { replayStartsAfter: { size: loaded.head.size, root: loaded.root.toString('hex') } }
      : {}),
    leaves: () => postgresTreeLines(pool, names),
    ...(logger ? { logger } : {}),
  })
  try {
    const feed = await PostgresTreeFeed.start({
      pool,
      names,
      tlog,
      storage,
      ...('head' in loaded ? { from: loaded.head } : {}),
      ...(logger ? { logger } : {}),
    })
    // The resumed tree's levels are checked for holes in the background (linear in the tree's size, so
    // not on the start path): the start does not wait for it; what it finds it recomputes and writes.
    const holes =
      'head' in loaded
        ? TreeHoleCheck.start(pool, names, loaded.head.size, logger ? { logger } : {})
        : undefined
    return {
      tlog,
      ...(holes ? { holes } : {}),
      stop: async () => {
        await holes?.stop()
        await feed.close()
        await pool.end()
      },
    }
  } catch (error) {
    await tlog.close().catch(() => {})
    await pool.end().catch(() => {})
    await repository.close().catch(() => {})
    throw error
  }
}

async function waitForDatabase<T>(open: () => Promise<T>, options: OpenBackendOptions): Promise<T> {
  for (;;) {
    try {
      const opened = await open()
      options.onWaiting?.(undefined)
      return opened
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || options.stopRequested?.()) throw error
      options.onWaiting?.(`Waiting for the database (retrying every second): ${error.message}`)
      options.logger?.warn({ err: error }, `database unavailable; retrying in ${DATABASE_RETRY_MS / 1000} s`)
      await new Promise((resolve) => setTimeout(resolve, DATABASE_RETRY_MS))
    }
  }
}
