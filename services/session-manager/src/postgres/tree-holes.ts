import { leafHash, nodeHash } from '@care/tlog'
import type { SchemaNames } from './schema-names.js'
import { TreeLineCursor } from './tree-lines.js'
import type { TreeTableDb } from './tree-table.js'

/** Indexes one query of the check covers (an index-only count over at most this many rows). */
const CHUNK = 65_536
/** At most this many missing indexes are listed and repaired per chunk (the rest at the next pass). */
const LISTED = 5000

/** Where the background hole check of the persisted tree is, and what it found. */
export interface TreeHoleStatus {
  state: 'running' | 'ok' | 'repaired' | 'unrepaired' | 'stopped' | 'failed'
  /** The tree size checked (the head the start resumed from). */
  size: number
  /** The level being (or last) checked. */
  level: number
  found: number
  repaired: number
  /** Why a hole could not be repaired, or why the check failed. */
  detail?: string
  durationMs?: number
}

/**
 * A check of the persisted tree, run in the background after a start resumed it: every level must hold
 * every complete-subtree hash of the tree of `size` leaves. It reads each level in chunks of idx
 * ranges (one index-only `count(*)` per chunk, the missing indexes listed only where one lacks), with
 * a pause between chunks, so no single query holds the pool or a lock for long. Levels go bottom up and
 * a hole is repaired before the level above is read: a leaf from its row's tree line (the rows are
 * read from the first up to the highest missing leaf, as the feed reads them), an inner hash from its
 * two children; written as the feed writes (`ON CONFLICT ... DO UPDATE`, the same value from every
 * instance). Until then a proof needing a missing hash answers 503. `stop` ends it between queries and
 * waits for the one in flight, so nothing is written after it resolved.
 *
 * @example
 * const check = TreeHoleCheck.start(pool, names, head.size, { logger })
 * // ... on shutdown, before closing the pool:
 * await check.stop()
 */
export class TreeHoleCheck {
  readonly status: TreeHoleStatus
  readonly #done: Promise<TreeHoleStatus>
  #stopped = false
  #wake: (() => void) | undefined
  /** The rows' tree lines, read on demand when a leaf is missing. */
  readonly #lines = new TreeLineCursor()

  private constructor(
    private readonly db: TreeTableDb,
    private readonly t: SchemaNames,
    size: number,
    private readonly options: { pauseMs?: number; logger?: { warn(o: object, m: string): void } },
  ) {
    this.status = { state: 'running', size, level: 0, found: 0, repaired: 0 }
    this.#done = Promise.resolve().then(() => this.#run())
  }

  /** Starts the check of a tree of `size` leaves (it runs until done or `stop`); never rejects. */
  static start(
    db: TreeTableDb,
    t: SchemaNames,
    size: number,
    options: { pauseMs?: number; logger?: { warn(o: object, m: string): void } } = {},
  ): TreeHoleCheck {
    return new TreeHoleCheck(db, t, size, options)
  }

  /** Resolves with the final status when the check is done (or stopped). */
  get done(): Promise<TreeHoleStatus> {
    return this.#done
  }

  /** Stops the check between queries; resolves once no query of it is in flight. */
  async stop(): Promise<TreeHoleStatus> {
    this.#stopped = true
    this.#wake?.()
    return this.#done
  }

  async #run(): Promise<TreeHoleStatus> {
    const started = performance.now()
    const s = this.status
    try {
      for (let level = 0; ; level++) {
        const needed = Math.floor(s.size / 2 ** level)
        if (needed === 0) break
        s.level = level
        for (let from = 0; from < needed; from += CHUNK) {
          if (this.#stopped) break
          const to = Math.min(needed, from + CHUNK)
          const missing = await this.#missing(level, from, to)
          if (missing.length > 0) {
            s.found += missing.length
            await this.#repair(level, missing)
          }
          await this.#pause()
        }
        if (this.#stopped) break
      }
      s.state = this.#stopped
        ? 'stopped'
        : s.found === 0
          ? 'ok'
          : s.repaired === s.found
            ? 'repaired'
            : 'unrepaired'
    } catch (err) {
      s.state = this.#stopped ? 'stopped' : 'failed'
      s.detail ??= err instanceof Error ? err.message : String(err)
    }
    s.durationMs = Math.round(performance.now() - started)
    if (s.found > 0 || s.state === 'failed') {
      this.options.logger?.warn(
        { ...s },
        s.state === 'repaired'
          ? 'transparency: the persisted tree had missing hashes; recomputed and written'
          : s.state === 'stopped'
            ? 'transparency: the check of the persisted tree for missing hashes stopped before it finished'
            : 'transparency: the persisted tree has missing hashes it could not repair (proofs needing them answer 503)',
      )
    }
    return s
  }

  /** The indexes in `[from, to)` that `level` lacks (a count first; listed only when short, `LISTED` per query). */
  async #missing(level: number, from: number, to: number): Promise<number[]> {
    const { rows } = await this.db.query<{ held: string }>(
      `SELECT count(*) AS held FROM ${this.t.treeNodes} WHERE level = $1 AND idx >= $2 AND idx < $3`,
      [level, from, to],
    )
    const lacking = to - from - Number(rows[0]!.held)
    const out: number[] = []
    let next = from
    while (out.length < lacking && next < to && !this.#stopped) {
      const listed = await this.db.query<{ idx: string }>(
        `SELECT g.idx FROM generate_series($2::bigint, $3::bigint - 1) AS g(idx)
         WHERE NOT EXISTS (SELECT 1 FROM ${this.t.treeNodes} n WHERE n.level = $1 AND n.idx = g.idx)
         ORDER BY g.idx LIMIT ${LISTED}`,
        [level, next, to],
      )
      if (listed.rows.length === 0) break
      for (const r of listed.rows) out.push(Number(r.idx))
      next = out.at(-1)! + 1
    }
    return out
  }

  async #repair(level: number, missing: readonly number[]): Promise<void> {
    const hashes = level === 0 ? await this.#leaves(missing) : await this.#inner(level, missing)
    const idx = [...hashes.keys()]
    for (let at = 0; at < idx.length && !this.#stopped; at += LISTED) {
      const batch = idx.slice(at, at + LISTED)
      await this.db.query(
        `INSERT INTO ${this.t.treeNodes} (level, idx, hash)
         SELECT $1::smallint, * FROM unnest($2::bigint[], $3::bytea[])
         ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash
           WHERE ${this.t.treeNodes}.hash IS DISTINCT FROM EXCLUDED.hash`,
        [level, batch, batch.map((i) => hashes.get(i)!)],
      )
      this.status.repaired += batch.length
    }
  }

  /**
   * Leaf hashes of `missing` from the rows' tree lines. One cursor for the whole check (chunks come in
   * increasing order): the rows are read once, from the first up to the highest missing leaf.
   */
  async #leaves(missing: readonly number[]): Promise<Map<number, Buffer>> {
    const wanted = new Set(missing)
    const last = Math.max(...missing)
    const out = new Map<number, Buffer>()
    const cursor = this.#lines
    // Only rows the persisted tree already holds (below its head), all committed: no watermark needed.
    if (cursor.leaves <= last) {
      for await (const line of cursor.read(this.db, this.t, Number.MAX_SAFE_INTEGER)) {
        if (this.#stopped) return out
        const index = cursor.leaves - 1
        if (wanted.has(index)) out.set(index, leafHash(line))
        if (index >= last) break
      }
    }
    if (out.size < missing.length) {
      this.status.detail = `the rows end before leaf ${last} (${cursor.leaves} rows): leaf hashes not recomputed`
    }
    return out
  }

  /** Inner hashes of `missing` at `level` from their children (the level below, repaired first). */
  async #inner(level: number, missing: readonly number[]): Promise<Map<number, Buffer>> {
    const { rows } = await this.db.query<{ idx: string; hash: Buffer }>(
      `SELECT idx, hash FROM ${this.t.treeNodes} WHERE level = $1 AND idx = ANY($2::bigint[])`,
      [level - 1, missing.flatMap((i) => [2 * i, 2 * i + 1])],
    )
    const below = new Map(rows.map((r) => [Number(r.idx), r.hash]))
    const out = new Map<number, Buffer>()
    for (const i of missing) {
      const left = below.get(2 * i)
      const right = below.get(2 * i + 1)
      if (left !== undefined && right !== undefined) out.set(i, nodeHash(left, right))
    }
    if (out.size < missing.length) {
      this.status.detail = `level ${level - 1} lacks children of level ${level}: inner hashes not recomputed`
    }
    return out
  }

  #pause(): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.pauseMs ?? 20)
      timer.unref()
      function done() {
        resolve()
      }
      this.#wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}
