import { encodeRecord, GENESIS_HASH } from '@care/event-log'
import { leafHash, MerkleTree, type NodeKey, type NodeStore, rootNodes, TreeProofs } from '@care/tlog'
import type pg from 'pg'
import { eventOfBody } from './event-chain.js'
import { unavailable } from './pg-errors.js'
import type { SchemaNames } from './schema-names.js'

const BATCH = 5000

/**
 * Where the persisted tree ends: `size` leaves, the table `seq` of the last row in it, the `hash` of
 * that row's tree line and of the line before it (`GENESIS_HASH` for the first). The feed continues
 * from here without re-reading the rows before.
 */
export interface TreeHead {
  size: number
  eventSeq: number
  lineHash: string
  prevLineHash: string
}

/** A head as persisted: with the tree's root at its size. */
export interface StoredHead extends TreeHead {
  root: Buffer
}

/**
 * What the tree's tables are read and written through: a `pg.Pool` (or a client) is one; tests wrap one
 * to count the queries and rows a start reads. A query is SQL text with its values, or a `pg` query
 * config (`readTreeNodes` sends a named statement: parsed and planned once per connection).
 *
 * @example
 * const db: TreeTableDb = pool
 */
export interface TreeTableDb {
  query<R extends pg.QueryResultRow>(
    query: string | pg.QueryConfig<unknown[]>,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>
}

const nodeKey = (level: number, index: number) => `${level}/${index}`

/**
 * Reads the hashes of `keys` from `tree_nodes` in one query (in the order of `keys`); rejects with a
 * `RangeError` naming the first node the table does not hold (derived data: the next start finds and
 * rewrites it), or with `StoreUnavailableError` when the query fails (database unreachable).
 *
 * @example
 * const [leaf] = await readTreeNodes(pool, names, [{ level: 0, index: 41 }])
 */
export async function readTreeNodes(
  db: TreeTableDb,
  t: SchemaNames,
  keys: readonly NodeKey[],
): Promise<Buffer[]> {
  if (keys.length === 0) return []
  let rows: { level: number; idx: string; hash: Buffer }[]
  try {
    ;({ rows } = await db.query<{ level: number; idx: string; hash: Buffer }>({
      // Named: every proof sends this statement, so it is parsed and planned once per connection
      // (at 10M leaves: proof p50 0.90 -> 0.67 ms, docs/benchmarks.md).
      name: `care-tree-nodes:${t.raw}`,
      text: `SELECT n.level, n.idx, n.hash FROM unnest($1::smallint[], $2::bigint[]) AS k(level, idx)
       JOIN ${t.treeNodes} n ON n.level = k.level AND n.idx = k.idx`,
      values: [keys.map((k) => k.level), keys.map((k) => k.index)],
    }))
  } catch (error) {
    throw unavailable(error)
  }
  const found = new Map(rows.map((r) => [nodeKey(r.level, Number(r.idx)), r.hash]))
  return keys.map((k) => {
    const hash = found.get(nodeKey(k.level, k.index))
    if (hash === undefined) {
      throw new RangeError(`${t.treeNodes} holds no hash at level ${k.level}, index ${k.index}`)
    }
    return hash
  })
}

/** Hashes read from the table kept for later proofs (upper levels are shared by most proofs). */
const CACHED_NODES = 4096

/**
 * The PostgreSQL tree's `NodeStore`: the complete-subtree hashes live in the `tree_nodes` table, not in
 * memory. The process holds only the compact range the tree was opened at (O(log n) hashes, which
 * `MerkleTree` starts from), the hashes put since they were last written (`persist`, called by the feed
 * after commit), and a small cache of hashes read back. `node` answers from those and throws for
 * anything else; `readNodes` (what proofs use) answers the rest with one query. The table is derived
 * data: every instance writes the same values (an existing row that differs, e.g. damaged, is
 * overwritten), and `loadPersistedTree` checks it before a start trusts it.
 *
 * @example
 * const store = new TableNodeStore(pool, names)
 * const tree = new MerkleTree(store)
 * tree.append(line)
 * await store.persist(head)
 */
export class TableNodeStore implements NodeStore {
  readonly #db: TreeTableDb
  readonly #t: SchemaNames
  #leafCount: number
  /** The compact range at open (what `MerkleTree` reads back). */
  readonly #edge = new Map<string, Buffer>()
  /** Put and not yet written to the table (kept until a write of them succeeded). */
  #unwritten = new Map<string, { level: number; index: number; hash: Buffer }>()
  readonly #cache = new Map<string, Buffer>()

  /** A store over the table whose tree has `size` leaves; `edge` holds that size's compact range (`rootNodes(size)`). */
  constructor(
    db: TreeTableDb,
    t: SchemaNames,
    opened: { size: number; edge: ReadonlyMap<string, Buffer> } = { size: 0, edge: new Map() },
  ) {
    this.#db = db
    this.#t = t
    this.#leafCount = opened.size
    for (const [key, hash] of opened.edge) this.#edge.set(key, hash)
  }

  get leafCount(): number {
    return this.#leafCount
  }

  /** Hashes put and not yet written (bounded by how often the feed persists). */
  get unwritten(): number {
    return this.#unwritten.size
  }

  put(level: number, index: number, hash: Buffer): void {
    this.#unwritten.set(nodeKey(level, index), { level, index, hash: Buffer.from(hash) })
    if (level === 0) this.#leafCount = index + 1
  }

  node(level: number, index: number): Buffer {
    const key = nodeKey(level, index)
    const hash = this.#unwritten.get(key)?.hash ?? this.#edge.get(key) ?? this.#cache.get(key)
    if (hash === undefined) {
      throw new RangeError(`no hash in memory at level ${level}, index ${index} (read it with readNodes)`)
    }
    return hash
  }

  /** The hashes of `keys` (in that order): from memory where held, the rest from the table in one query. */
  async readNodes(keys: readonly NodeKey[]): Promise<Buffer[]> {
    const out: (Buffer | undefined)[] = keys.map((k) => {
      const key = nodeKey(k.level, k.index)
      return this.#unwritten.get(key)?.hash ?? this.#edge.get(key) ?? this.#cached(key)
    })
    const missing = keys.filter((_, i) => out[i] === undefined)
    const read = await readTreeNodes(this.#db, this.#t, missing)
    const byKey = new Map(missing.map((k, i) => [nodeKey(k.level, k.index), read[i]!]))
    for (const [key, hash] of byKey) this.#remember(key, hash)
    return keys.map((k, i) => out[i] ?? byKey.get(nodeKey(k.level, k.index))!)
  }

  /** Drops the hashes read back from the table (after a proof from them failed a check: re-read them). */
  forget(): void {
    this.#cache.clear()
  }

  #cached(key: string): Buffer | undefined {
    const hash = this.#cache.get(key)
    if (hash !== undefined) {
      // Most recently used last: the first entry is the one evicted.
      this.#cache.delete(key)
      this.#cache.set(key, hash)
    }
    return hash
  }

  #remember(key: string, hash: Buffer): void {
    this.#cache.set(key, hash)
    if (this.#cache.size > CACHED_NODES) this.#cache.delete(this.#cache.keys().next().value!)
  }

  /** Forgets hashes beyond `leafCount` (the tree can only be cut back to a size whose compact range is in memory). */
  truncate(leafCount: number): void {
    this.#leafCount = Math.min(this.#leafCount, leafCount)
    for (const [key, p] of this.#unwritten) {
      if (p.index >= Math.floor(leafCount / 2 ** p.level)) this.#unwritten.delete(key)
    }
    this.#cache.clear()
  }

  flush(): void {}
  close(): void {}

  /**
   * Writes the hashes put since the last successful call, then `head` (the tree's end, once its hashes
   * are written), in batches, and deletes older heads; a crash in between leaves hashes beyond the
   * newest head, which the next start ignores and overwrites. Hashes stay in memory until written, so
   * proofs never miss one; on an error they are kept for the next call.
   */
  async persist(head: StoredHead | undefined): Promise<void> {
    const t = this.#t
    const pending = [...this.#unwritten.values()]
    for (let at = 0; at < pending.length; at += BATCH) {
      const batch = pending.slice(at, at + BATCH)
      await this.#db.query(
        `INSERT INTO ${t.treeNodes} (level, idx, hash)
         SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
         ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash
           WHERE ${t.treeNodes}.hash IS DISTINCT FROM EXCLUDED.hash`,
        [batch.map((p) => p.level), batch.map((p) => p.index), batch.map((p) => p.hash)],
      )
      for (const p of batch) {
        const key = nodeKey(p.level, p.index)
        if (this.#unwritten.get(key) === p) this.#unwritten.delete(key)
      }
    }
    if (head === undefined || head.size === 0) return
    await this.#db.query(
      `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (size) DO UPDATE SET event_seq = EXCLUDED.event_seq, line_hash = EXCLUDED.line_hash,
         prev_line_hash = EXCLUDED.prev_line_hash, root = EXCLUDED.root`,
      [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
    )
    await this.#db.query(`DELETE FROM ${t.treeHeads} WHERE size < $1`, [head.size])
  }
}

/**
 * Checks that `tree_nodes` holds every complete-subtree hash of the tree of `size` leaves: level `L`
 * must hold `floor(size / 2^L)` rows with an index below that (an index-only count per level, one
 * query, linear in the tree's size: for tools and tests, not a start; `TreeHoleCheck` is the background
 * form that also repairs; rows beyond, written ahead of a head, are not counted). Undefined when none is missing, else
 * which level lacks how many (a cut level, or a hole inside one).
 *
 * @example
 * const reason = await treeNodesMissing(pool, names, head.size)
 * if (reason) rebuild(reason)
 */
export async function treeNodesMissing(
  db: TreeTableDb,
  t: SchemaNames,
  size: number,
): Promise<string | undefined> {
  const { rows } = await db.query<{ level: number; needed: string; held: string }>(
    `SELECT l.level, $1::bigint >> l.level AS needed,
       (SELECT count(*) FROM ${t.treeNodes} WHERE level = l.level AND idx < ($1::bigint >> l.level)) AS held
     FROM generate_series(0, 62) AS l(level) WHERE ($1::bigint >> l.level) > 0`,
    [size],
  )
  for (const { level, needed, held } of rows) {
    if (Number(held) < Number(needed)) {
      return `level ${level} of the persisted tree holds fewer than ${needed} hashes (${held})`
    }
  }
  return undefined
}

/**
 * The tree as a start check sees it: its size and its root at any size up to it (read from the table).
 *
 * @example
 * const check = async (tree: PersistedTree) => (await tree.root(cp.size)).equals(cp.rootHash) ? undefined : 'differs'
 */
export interface PersistedTree {
  readonly size: number
  root(size: number): Promise<Buffer>
}

/**
 * Reads where the persisted tree ends (`tree_heads`) and checks it cheaply before it is trusted, reading
 * O(log n) rows of `tree_nodes`, never the whole table (a hole inside a level is not looked for here:
 * `TreeHoleCheck` finds and repairs those in the background after the start); the last leaf is recomputed
 * from its row (the row at the head's `seq`, as the line at that position after the head's previous
 * line hash) and must equal the stored leaf hash and line hash; the compact range at the head's size
 * must give the root persisted with the head (so the edge new leaves build on is intact); and `check`
 * (the newest signed checkpoints, whose roots are read from the table) must pass. Returns the store and
 * head to resume from (with the root there), or a reason to rebuild from the rows.
 *
 * @example
 * const loaded = await loadPersistedTree(pool, names, async (tree) => newestCheckpointMismatch(tree, dir, verifier))
 */
export async function loadPersistedTree(
  db: TreeTableDb,
  t: SchemaNames,
  check: (tree: PersistedTree) => Promise<string | undefined>,
): Promise<{ store: TableNodeStore; head: TreeHead; root: Buffer } | { rebuild: string }> {
  const heads = await db.query<{
    size: string
    event_seq: string
    line_hash: string
    prev_line_hash: string
    root: Buffer
  }>(`SELECT size, event_seq, line_hash, prev_line_hash, root FROM ${t.treeHeads} ORDER BY size DESC LIMIT 1`)
  const row = heads.rows[0]
  if (row === undefined) return { rebuild: 'no persisted tree' }
  const head: TreeHead = {
    size: Number(row.size),
    eventSeq: Number(row.event_seq),
    lineHash: row.line_hash,
    prevLineHash: row.prev_line_hash,
  }
  const edgeKeys = rootNodes(head.size)
  const lastLeaf = { level: 0, index: head.size - 1 }
  let read: Buffer[]
  try {
    read = await readTreeNodes(db, t, [...edgeKeys, lastLeaf])
  } catch (error) {
    if (error instanceof RangeError) return { rebuild: error.message }
    throw error
  }
  const edge = new Map(edgeKeys.map((k, i) => [nodeKey(k.level, k.index), read[i]!]))
  const last = await db.query<{ body: string }>(`SELECT body FROM ${t.events} WHERE seq = $1`, [
    head.eventSeq,
  ])
  if (last.rows.length === 0)
    return { rebuild: `the row at seq ${head.eventSeq} of the persisted tree is gone` }
  const { record, line } = encodeRecord(eventOfBody(last.rows[0]!.body), head.size, head.prevLineHash)
  const leaf = leafHash(line.subarray(0, line.length - 1))
  if (record.hash !== head.lineHash || !leaf.equals(read.at(-1)!)) {
    return { rebuild: `the persisted tree's last leaf (${head.size}) does not match its row` }
  }
  const store = new TableNodeStore(db, t, { size: head.size, edge })
  const tree = new MerkleTree(store)
  if (!tree.root().equals(row.root)) {
    return { rebuild: `the persisted hashes do not give the persisted root at ${head.size} leaves` }
  }
  const proofs = new TreeProofs(store)
  let failed: string | undefined
  try {
    failed = await check({
      size: head.size,
      root: (size) => (size === head.size ? Promise.resolve(tree.root()) : proofs.root(size)),
    })
  } catch (error) {
    if (error instanceof RangeError) return { rebuild: error.message }
    throw error
  }
  if (failed !== undefined) return { rebuild: failed }
  return { store, head, root: row.root }
}

/** The head of an empty tree (the feed starts from the first row). */
export const EMPTY_HEAD: TreeHead = {
  size: 0,
  eventSeq: 0,
  lineHash: GENESIS_HASH,
  prevLineHash: GENESIS_HASH,
}
