import { encodeRecord, GENESIS_HASH } from '@care/event-log'
import { leafHash, MerkleTree, type NodeStore } from '@care/tlog'
import type pg from 'pg'
import { eventOfBody } from './event-chain.js'
import { PackedNodeStore } from './packed-node-store.js'
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
 * A `NodeStore` that keeps the PostgreSQL tree's hashes in memory (`PackedNodeStore`) and remembers
 * every hash put since the last `persist`, which writes them to the `tree_nodes` table (after commit, by
 * the feed). The table is derived data: every instance writes the same values (an existing row that
 * differs, e.g. damaged, is overwritten), and `loadPersistedTree` checks it before trusting it.
 *
 * @example
 * const store = new PersistingNodeStore()
 * const tree = new MerkleTree(store)
 * tree.append(line)
 * await store.persist(pool, names, head)
 */
export class PersistingNodeStore implements NodeStore {
  readonly #inner: PackedNodeStore
  #pending: { level: number; index: number; hash: Buffer }[] = []

  constructor(inner = new PackedNodeStore()) {
    this.#inner = inner
  }

  get leafCount(): number {
    return this.#inner.leafCount
  }

  put(level: number, index: number, hash: Buffer): void {
    this.#inner.put(level, index, hash)
    this.#pending.push({ level, index, hash: Buffer.from(hash) })
  }

  node(level: number, index: number): Buffer {
    return this.#inner.node(level, index)
  }

  truncate(leafCount: number): void {
    this.#inner.truncate(leafCount)
    this.#pending = this.#pending.filter((p) => p.index < Math.floor(leafCount / 2 ** p.level))
  }

  flush(): void {}
  close(): void {}

  /**
   * Writes the hashes put since the last call, then `head` (the tree's end, once its hashes are
   * written), in batches; a crash in between leaves rows `loadPersistedTree` cuts back or rebuilds.
   */
  async persist(db: pg.Pool, t: SchemaNames, head: StoredHead | undefined): Promise<void> {
    const pending = this.#pending
    this.#pending = []
    try {
      for (let at = 0; at < pending.length; at += BATCH) {
        const batch = pending.slice(at, at + BATCH)
        await db.query(
          `INSERT INTO ${t.treeNodes} (level, idx, hash)
           SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
           ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash
             WHERE ${t.treeNodes}.hash IS DISTINCT FROM EXCLUDED.hash`,
          [batch.map((p) => p.level), batch.map((p) => p.index), batch.map((p) => p.hash)],
        )
      }
      if (head === undefined || head.size === 0) return
      await db.query(
        `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (size) DO UPDATE SET event_seq = EXCLUDED.event_seq, line_hash = EXCLUDED.line_hash,
           prev_line_hash = EXCLUDED.prev_line_hash, root = EXCLUDED.root`,
        [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
      )
      await db.query(`DELETE FROM ${t.treeHeads} WHERE size < $1`, [head.size])
    } catch (error) {
      // Not written: keep them for the next call (derived data, so a later write is as good).
      this.#pending = [...pending, ...this.#pending]
      throw error
    }
  }
}

/**
 * Reads the persisted tree (`tree_nodes`, `tree_heads`) and checks it cheaply before it is trusted:
 * the hashes are cut back to the largest size every level covers and that a head names; the last leaf
 * is recomputed from its row (the row at the head's `seq`, as the line at that position after the
 * head's previous line hash) and must equal the stored leaf hash and line hash; the hashes must give
 * the root persisted with the head (so the compact range new leaves build on is intact); and `check` (the newest
 * signed checkpoint, when one is at or below that size) must hold for the root there. Returns the store
 * and head to resume from (with the root there), or a reason to rebuild from the rows.
 *
 * @example
 * const loaded = await loadPersistedTree(pool, names, (tree) => tree.root(cp.size).equals(cp.rootHash))
 */
export async function loadPersistedTree(
  db: pg.Pool,
  t: SchemaNames,
  check: (tree: MerkleTree) => string | undefined,
): Promise<{ store: PersistingNodeStore; head: TreeHead; root: Buffer } | { rebuild: string }> {
  const heads = await db.query<{
    size: string
    event_seq: string
    line_hash: string
    prev_line_hash: string
    root: Buffer
  }>(`SELECT size, event_seq, line_hash, prev_line_hash, root FROM ${t.treeHeads} ORDER BY size DESC`)
  if (heads.rows.length === 0) return { rebuild: 'no persisted tree' }
  const packed = new PackedNodeStore()
  const counts: number[] = []
  for (let level = 0; level < 64; level++) {
    let next = 0
    for (;;) {
      const { rows } = await db.query<{ idx: string; hash: Buffer }>(
        `SELECT idx, hash FROM ${t.treeNodes} WHERE level = $1 AND idx >= $2 ORDER BY idx LIMIT ${BATCH}`,
        [level, next],
      )
      for (const row of rows) {
        // A gap ends the level's usable prefix.
        if (Number(row.idx) !== next) break
        packed.put(level, next, row.hash)
        next++
      }
      if (rows.length < BATCH || next !== Number(rows.at(-1)!.idx) + 1) break
    }
    counts[level] = next
    if (next === 0) break
  }
  // Largest n with floor(n / 2^k) ≤ count_k at every level k.
  let covered = counts[0] ?? 0
  for (let level = 1; level < 64 && 2 ** level <= covered; level++) {
    covered = Math.min(covered, ((counts[level] ?? 0) + 1) * 2 ** level - 1)
  }
  const row = heads.rows.find((h) => Number(h.size) <= covered)
  if (row === undefined) return { rebuild: `the persisted hashes cover ${covered} leaves, no head` }
  const head: TreeHead = {
    size: Number(row.size),
    eventSeq: Number(row.event_seq),
    lineHash: row.line_hash,
    prevLineHash: row.prev_line_hash,
  }
  packed.truncate(head.size)
  const last = await db.query<{ body: string }>(`SELECT body FROM ${t.events} WHERE seq = $1`, [
    head.eventSeq,
  ])
  if (last.rows.length === 0)
    return { rebuild: `the row at seq ${head.eventSeq} of the persisted tree is gone` }
  const { record, line } = encodeRecord(eventOfBody(last.rows[0]!.body), head.size, head.prevLineHash)
  const leaf = leafHash(line.subarray(0, line.length - 1))
  if (record.hash !== head.lineHash || !leaf.equals(packed.node(0, head.size - 1))) {
    return { rebuild: `the persisted tree's last leaf (${head.size}) does not match its row` }
  }
  const store = new PersistingNodeStore(packed)
  const tree = new MerkleTree(store)
  if (!tree.root().equals(row.root)) {
    return { rebuild: `the persisted hashes do not give the persisted root at ${head.size} leaves` }
  }
  const failed = check(tree)
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
