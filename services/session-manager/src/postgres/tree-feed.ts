import type pg from 'pg'
import type { TransparencyLog, TreeStorage } from '../transparency/transparency-log.js'
import { unavailable } from './pg-errors.js'
import type { SchemaNames } from './schema-names.js'
import { committedHigh, TreeLineCursor } from './tree-lines.js'
import { type StoredHead, TableNodeStore, type TreeHead } from './tree-table.js'

/**
 * Tree storage for the PostgreSQL store: the hashes in the `tree_nodes` table (`TableNodeStore`: only
 * the compact range, unwritten hashes and a small cache in memory), written by the feed after commit
 * together with the `tree_heads` row (derived data). `open` gives the tree a start resumes from
 * (checked by `loadPersistedTree`) or an empty one; `remove` (a rebuild) starts empty and deletes the
 * `tree_heads` rows at the next `persist` (never `tree_nodes`: the rebuild rewrites its rows in place).
 *
 * @example
 * const storage = new PostgresTreeStorage(pool, names, loaded.store)
 * const tlog = TransparencyLog.open({ dataDir, signer, treeStorage: storage, replayStartsAfter: { size, root } })
 */
export class PostgresTreeStorage implements TreeStorage {
  #current: TableNodeStore
  #clear: boolean

  /** `resumed`: the checked persisted tree; without it the heads are deleted at the first persist. */
  constructor(
    private readonly db: pg.Pool,
    private readonly names: SchemaNames,
    resumed?: TableNodeStore,
  ) {
    this.#current = resumed ?? new TableNodeStore(db, names)
    this.#clear = resumed === undefined
  }

  open(): TableNodeStore {
    return this.#current
  }

  remove(): void {
    this.#current = new TableNodeStore(this.db, this.names)
    this.#clear = true
  }

  /** Writes the hashes added since the last call and the tree's `head` (deleting stale heads first). */
  async persist(head: StoredHead): Promise<void> {
    if (this.#clear) {
      // Only the heads: other instances may serve proofs from tree_nodes meanwhile and keep writing
      // their new hashes and heads above it. Every hash has one right value, so this instance's writes
      // overwrite damaged rows in place, and its own heads are written after all its hashes below them.
      await this.db.query(`DELETE FROM ${this.names.treeHeads}`)
      this.#clear = false
    }
    await this.#current.persist(head)
  }
}

/** While reading many rows at once, the hashes are persisted every this many rows (bounds what is pending). */
const PERSIST_EVERY = 50_000

/** How often the feed looks for newly committed rows (ms); an idle poll is one `max(seq)` lookup. */
export const TREE_POLL_MS = 200

/**
 * Feeds a `TransparencyLog` from the PostgreSQL store: at `start` every committed row (up to the
 * watermark) as a recovered line, then `finishRecovery`; afterwards, every `pollMs`, the rows committed
 * since, in `seq` order, as durable lines. Only rows at or below `events_watermark()` are read, and no
 * insert can still be in flight below it, so the leaf order is the commit order of `seq` with no gap
 * and no row twice, every instance builds the same tree, and a checkpoint is only ever signed over
 * committed rows. One poll at a time; errors are logged and retried at the next poll.
 *
 * @example
 * const feed = await PostgresTreeFeed.start({ pool, names, tlog })
 * // ... on shutdown:
 * await feed.close(); await tlog.close()
 */
export class PostgresTreeFeed {
  readonly #cursor: TreeLineCursor
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> = Promise.resolve()
  #closed = false

  private constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
    private readonly tlog: TransparencyLog,
    private readonly storage: PostgresTreeStorage,
    private readonly logger: { warn(o: object, m: string): void } | undefined,
    from: TreeHead | undefined,
  ) {
    this.#cursor = new TreeLineCursor(from)
  }

  static async start(options: {
    pool: pg.Pool
    names: SchemaNames
    tlog: TransparencyLog
    /** The tlog's tree storage; the feed persists its hashes after each read. */
    storage: PostgresTreeStorage
    /** Where the resumed persisted tree ends (the tlog was opened with `replayStartsAfter` at it); default the start. */
    from?: TreeHead
    pollMs?: number
    logger?: { warn(o: object, m: string): void }
  }): Promise<PostgresTreeFeed> {
    const feed = new PostgresTreeFeed(
      options.pool,
      options.names,
      options.tlog,
      options.storage,
      options.logger,
      options.from,
    )
    try {
      const high = await committedHigh(options.pool, options.names)
      for await (const line of feed.#cursor.read(options.pool, options.names, high)) {
        options.tlog.observer.recovered(line)
        // A first start over a large table: write the hashes as they come, not all at the end.
        if (feed.#cursor.leaves % PERSIST_EVERY === 0) await feed.#persist()
      }
    } catch (error) {
      // An unreachable database is waited for like at any other start.
      throw unavailable(error)
    }
    try {
      // It reads stored hashes (the newest checkpoint's root): a database error is waited for too.
      await options.tlog.finishRecovery(feed.#cursor.leaves)
    } catch (error) {
      throw unavailable(error)
    }
    await feed.#persist()
    const pollMs = options.pollMs ?? TREE_POLL_MS
    feed.#timer = setInterval(() => void feed.poll(), pollMs)
    feed.#timer.unref()
    return feed
  }

  /** Rows read into the tree so far. */
  get leaves(): number {
    return this.#cursor.leaves
  }

  /**
   * Reads the rows committed since the last poll into the tree now (waits for a poll in progress).
   *
   * @example
   * await feed.poll()
   */
  poll(): Promise<void> {
    this.#polling = this.#polling.then(() => this.#poll())
    return this.#polling
  }

  async #poll(): Promise<void> {
    if (this.#closed) return
    // The cursor moves past each line it yields, so every yielded line must reach the tree, error or not.
    let lines: Buffer[] = []
    let batches = 0
    try {
      // Without a new row there is nothing to wait for: skip the watermark's SHARE lock.
      const { rows } = await this.pool.query<{ top: string | null }>(
        `SELECT max(seq) AS top FROM ${this.names.events}`,
      )
      if (Number(rows[0]?.top ?? 0) <= this.#cursor.eventSeq) return
      const high = await committedHigh(this.pool, this.names)
      for await (const line of this.#cursor.read(this.pool, this.names, high)) {
        lines.push(line)
        if (lines.length >= 5000) {
          this.tlog.observer.durable(lines)
          lines = []
          batches++
          if ((batches * 5000) % PERSIST_EVERY === 0) await this.#persist()
        }
      }
    } catch (err) {
      this.logger?.warn({ err }, 'transparency: could not read new rows into the tree; retrying')
    } finally {
      if (lines.length > 0) this.tlog.observer.durable(lines)
    }
    await this.#persist()
  }

  /** Writes the tree's new hashes and its head to the tables (errors logged; retried at the next poll). */
  async #persist(): Promise<void> {
    const tree = this.tlog.tree
    // Only a tree that holds exactly the cursor's lines has the cursor's head.
    if (tree.size !== this.#cursor.leaves || tree.size === 0) return
    const head: StoredHead = {
      size: this.#cursor.leaves,
      eventSeq: this.#cursor.eventSeq,
      lineHash: this.#cursor.lastHash,
      prevLineHash: this.#cursor.prevHash,
      root: tree.root(),
    }
    try {
      await this.storage.persist(head)
    } catch (err) {
      this.logger?.warn({ err }, 'transparency: could not persist the tree hashes; retrying')
    }
  }

  /** Reads what is committed one last time and stops polling (then close the `TransparencyLog`). */
  async close(): Promise<void> {
    if (this.#closed) return
    clearInterval(this.#timer)
    await this.poll()
    this.#closed = true
    await this.#polling
  }
}
