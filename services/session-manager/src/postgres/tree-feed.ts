import type pg from 'pg'
import type { TransparencyLog, TreeStorage } from '../transparency/transparency-log.js'
import { PackedNodeStore } from './packed-node-store.js'
import { unavailable } from './pg-errors.js'
import type { SchemaNames } from './schema-names.js'
import { committedHigh, TreeLineCursor } from './tree-lines.js'

/**
 * Tree storage for the PostgreSQL store: the hashes live in memory, rebuilt from the database at every
 * start (the database is the only durable copy of the records; the tree is derived from it). Nothing
 * of the tree is written anywhere, so no crash can leave tree data behind that disagrees with the rows.
 *
 * @example
 * const tlog = TransparencyLog.open({ dataDir, signer, treeStorage: memoryTreeStorage })
 */
export const memoryTreeStorage: TreeStorage = {
  open: () => new PackedNodeStore(),
  remove: () => {},
}

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
  readonly #cursor = new TreeLineCursor()
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> = Promise.resolve()
  #closed = false

  private constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
    private readonly tlog: TransparencyLog,
    private readonly logger: { warn(o: object, m: string): void } | undefined,
  ) {}

  static async start(options: {
    pool: pg.Pool
    names: SchemaNames
    tlog: TransparencyLog
    pollMs?: number
    logger?: { warn(o: object, m: string): void }
  }): Promise<PostgresTreeFeed> {
    const feed = new PostgresTreeFeed(options.pool, options.names, options.tlog, options.logger)
    try {
      const high = await committedHigh(options.pool, options.names)
      for await (const line of feed.#cursor.read(options.pool, options.names, high)) {
        options.tlog.observer.recovered(line)
      }
    } catch (error) {
      // An unreachable database is waited for like at any other start.
      throw unavailable(error)
    }
    await options.tlog.finishRecovery(feed.#cursor.leaves)
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
        }
      }
    } catch (err) {
      this.logger?.warn({ err }, 'transparency: could not read new rows into the tree; retrying')
    } finally {
      if (lines.length > 0) this.tlog.observer.durable(lines)
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
