import { encodeRecord } from '@care/event-log'
import { leafHash, MemoryNodeStore, MerkleTree, TreeProofs } from '@care/tlog'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openBackend } from '../backend.js'
import { loadConfig } from '../config.js'
import { startInputAt } from '../sessions/test-support/inputs.js'
import { eventOfBody } from './event-chain.js'
import { schemaNames } from './schema-names.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
  testPool,
} from './test-support/postgres-server.js'
import { PostgresTreeStorage } from './tree-feed.js'
import { TreeHoleCheck } from './tree-holes.js'
import {
  loadPersistedTree,
  readTreeNodes,
  type TableNodeStore,
  type TreeTableDb,
  treeNodesMissing,
} from './tree-table.js'

// A persisted tree of N leaves written straight into tree_nodes: large enough that reading the table
// (2N rows) and reading O(log N) rows differ by orders of magnitude, small enough for a 2-core CI box.
const N = 40_000
const t = schemaNames()
let server: TestPostgres
let pool: pg.Pool
/** The same tree in memory: the reference every proof from the table is compared with. */
let reference: MerkleTree
let head: { size: number; eventSeq: number; lineHash: string; prevLineHash: string; root: Buffer }

/** A `MemoryNodeStore` that also lists every hash put, to write them into the table. */
class RecordingNodeStore extends MemoryNodeStore {
  readonly puts: { level: number; index: number; hash: Buffer }[] = []
  override put(level: number, index: number, hash: Buffer): void {
    super.put(level, index, hash)
    this.puts.push({ level, index, hash })
  }
}

/** `pool` behind the tree's `TreeTableDb` seam, counting the queries issued and the rows they returned. */
function counting(): { db: TreeTableDb; seen: { queries: number; rows: number; texts: string[] } } {
  const seen = { queries: 0, rows: 0, texts: [] as string[] }
  return {
    seen,
    db: {
      async query<R extends pg.QueryResultRow>(
        query: string | pg.QueryConfig<unknown[]>,
        values?: unknown[],
      ) {
        seen.texts.push(typeof query === 'string' ? query : query.text)
        const result = await pool.query<R>(query, values)
        seen.queries++
        seen.rows += result.rows.length
        return result
      },
    },
  }
}

async function writeNodes(puts: readonly { level: number; index: number; hash: Buffer }[]): Promise<void> {
  for (let at = 0; at < puts.length; at += 20_000) {
    const batch = puts.slice(at, at + 20_000)
    await pool.query(
      `INSERT INTO ${t.treeNodes} (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
       ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash`,
      [batch.map((p) => p.level), batch.map((p) => p.index), batch.map((p) => p.hash)],
    )
  }
}

beforeAll(async () => {
  server = await startTestPostgres()
  const databaseUrl = await createServiceDatabase(server)
  // One real row (migrated schema, written by the service): the persisted tree's last leaf is its line.
  const backend = await openBackend(
    loadConfig({ CARE_STORE: 'postgres', DATABASE_URL: databaseUrl, CARE_DB_OWNER_ROLE: 'care_owner' }, []),
  )
  expect((await backend.sessions.start(startInputAt(Date.now(), { user_id: 'last' }))).status).toBe(201)
  await backend.close()
  pool = testPool(databaseUrl, 2)
  const { rows } = await pool.query<{ seq: string; body: string }>(`SELECT seq, body FROM ${t.events}`)
  const prevLineHash = 'ab'.repeat(32)
  const { record, line } = encodeRecord(eventOfBody(rows[0]!.body), N, prevLineHash)
  const store = new RecordingNodeStore()
  reference = new MerkleTree(store)
  for (let i = 0; i < N - 1; i++) reference.append(Buffer.from(`synthetic leaf ${i}`))
  reference.append(line.subarray(0, line.length - 1))
  await writeNodes(store.puts)
  head = {
    size: N,
    eventSeq: Number(rows[0]!.seq),
    lineHash: record.hash,
    prevLineHash,
    root: reference.root(),
  }
  await pool.query(
    `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root) VALUES ($1, $2, $3, $4, $5)`,
    [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
  )
}, 180_000)

afterAll(async () => {
  await pool?.end()
  await server?.destroy()
}, 30_000)

const noCheck = async () => undefined

/** (index, size) pairs: small and large sizes, powers of two and not, first, middle and last leaves. */
function pairs(max: number): [number, number][] {
  const sizes = [1, 2, 3, 5, 8, 13, 1023, 1024, 1025, 4096, 12_345, 32_768, 32_769, max - 1, max]
  const out: [number, number][] = []
  for (const size of sizes) {
    for (const index of new Set([0, 1, Math.floor(size / 3), size - 2, size - 1])) {
      if (index >= 0 && index < size) out.push([index, size])
    }
  }
  // And some spread over the whole range (deterministic).
  for (let k = 1; k <= 40; k++) {
    const size = 1 + ((k * 7919 * 131) % max)
    out.push([(k * 104_729) % size, size])
  }
  return out
}

describe('the PostgreSQL tree lives in its table, not in memory', () => {
  it('a start over a persisted tree of 40,000 leaves reads O(log n) rows of tree_nodes, never the table', async () => {
    const { db, seen } = counting()
    const checked: number[] = []
    const loaded = await loadPersistedTree(db, t, async (tree) => {
      // What the start's checkpoint check asks: roots at earlier sizes, read from the table.
      for (const size of [1000, 12_345, 39_999]) {
        checked.push(size)
        if (!(await tree.root(size)).equals(reference.root(size))) return `root at ${size} differs`
      }
      return undefined
    })
    expect('rebuild' in loaded ? loaded.rebuild : undefined).toBeUndefined()
    const { store, head: resumed, root } = loaded as Exclude<typeof loaded, { rebuild: string }>
    expect(resumed).toMatchObject({ size: N, eventSeq: head.eventSeq })
    expect(root).toEqual(head.root)
    expect(checked).toHaveLength(3)
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.treeNodes}`)
    expect(Number(rows[0]!.n)).toBeGreaterThan(2 * N - 40)
    // The head, the compact range and last leaf, the last row, and three roots: a handful of queries
    // and a few hundred rows at most, against 80,000 in the table. No count over a level (linear in the
    // tree's size): holes inside levels are looked for after the start (TreeHoleCheck).
    expect(seen.queries).toBeLessThanOrEqual(7)
    expect(seen.rows).toBeLessThan(200)
    expect(seen.texts.filter((q) => /count\(/i.test(q))).toEqual([])
    // The process holds the compact range and nothing else.
    expect(store.unwritten).toBe(0)
    expect(new MerkleTree(store).root()).toEqual(reference.root())
  }, 60_000)

  it('serves inclusion and consistency proofs from the table byte-identical to the in-memory tree, one query each, including the right edge', async () => {
    const loaded = await loadPersistedTree(pool, t, noCheck)
    const store = (loaded as { store: TableNodeStore }).store
    const proofs = new TreeProofs(store)
    for (const [index, size] of pairs(N)) {
      const got = await proofs.inclusion(index, size)
      expect(got.proof, `${index}/${size}`).toEqual(reference.inclusionProof(index, size))
      expect(got.root, `${index}/${size}`).toEqual(reference.root(size))
      expect(got.leafHash).toEqual(reference.leafHash(index))
    }
    for (const [from, to] of [
      [1, N],
      [3, 1024],
      [1024, 1025],
      [12_345, 32_769],
      [N - 1, N],
    ] as const) {
      const got = await proofs.consistency(from, to)
      expect(got.proof, `${from}..${to}`).toEqual(reference.consistencyProof(from, to))
      expect(got.root1).toEqual(reference.root(from))
      expect(got.root2).toEqual(reference.root(to))
    }
    const { db, seen } = counting()
    const viaCounter = new TreeProofs({ readNodes: (keys) => readTreeNodes(db, t, keys) })
    expect((await viaCounter.inclusion(17, N)).proof).toEqual(reference.inclusionProof(17, N))
    expect(seen.queries).toBe(1)

    // The tree grows past the persisted head: the new hashes are in memory until written, and proofs
    // over the new right edge combine them with the table's.
    const tree = new MerkleTree(store)
    const grown = N + 37
    for (let i = N; i < grown; i++) {
      tree.append(Buffer.from(`later leaf ${i}`))
      reference.append(Buffer.from(`later leaf ${i}`))
    }
    expect(store.unwritten).toBeGreaterThan(37)
    for (const index of [0, N - 1, N, grown - 2, grown - 1]) {
      expect((await proofs.inclusion(index, grown)).proof).toEqual(reference.inclusionProof(index, grown))
    }
    expect((await proofs.consistency(N, grown)).proof).toEqual(reference.consistencyProof(N, grown))
    // Written (as the feed does after each read), another instance's store serves the same proofs from the table.
    await store.persist({ ...head, size: grown, root: tree.root() })
    expect(store.unwritten).toBe(0)
    const other = new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) })
    for (const [index, size] of [
      [N, grown],
      [grown - 1, grown],
      [5, grown],
    ] as const) {
      expect((await other.inclusion(index, size)).proof).toEqual(reference.inclusionProof(index, size))
    }
  }, 120_000)

  it('reads the hashes of a proof with one named statement, so each connection plans it once', async () => {
    const sent: (string | pg.QueryConfig<unknown[]>)[] = []
    const db: TreeTableDb = {
      query<R extends pg.QueryResultRow>(query: string | pg.QueryConfig<unknown[]>, values?: unknown[]) {
        sent.push(query)
        return pool.query<R>(query, values)
      },
    }
    const proofs = new TreeProofs({ readNodes: (keys) => readTreeNodes(db, t, keys) })
    for (const index of [0, 7, N - 1]) {
      const got = await proofs.inclusion(index, N)
      expect(got.proof).toEqual(reference.inclusionProof(index, N))
    }
    expect(sent).toHaveLength(3)
    for (const query of sent) expect(query).toMatchObject({ name: `care-tree-nodes:${t.raw}` })
    // The same name on every call: pg prepares it on a connection once and then only binds it.
    expect(new Set(sent.map((q) => (q as pg.QueryConfig).text)).size).toBe(1)
  })

  it('a damaged compact-range hash makes the start rebuild; a cut level or a hole is found after the start and repaired, and a missing hash fails the proof that needs it until then', async () => {
    // Back to the head at N = 40,000 = 32,768 + 4,096 + 2,048 + 1,024 + 64 leaves (hashes beyond it stay).
    await pool.query(`DELETE FROM ${t.treeHeads}`)
    await pool.query(
      `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root) VALUES ($1, $2, $3, $4, $5)`,
      [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
    )
    expect('store' in (await loadPersistedTree(pool, t, noCheck))).toBe(true)
    const level4 = await pool.query<{ idx: string; hash: Buffer }>(
      `SELECT idx, hash FROM ${t.treeNodes} WHERE level = 4 AND idx >= 2000 AND idx < 2500 ORDER BY idx`,
    )
    await pool.query(`DELETE FROM ${t.treeNodes} WHERE level = 4 AND idx >= 2000 AND idx < 2500`)
    // Level 4 is not on the compact range of 40,000: the start resumes, the background check finds the
    // 500 missing hashes and recomputes them from level 3.
    expect('store' in (await loadPersistedTree(pool, t, noCheck))).toBe(true)
    const cut = await TreeHoleCheck.start(pool, t, N, { pauseMs: 0 }).done
    expect(cut).toMatchObject({ state: 'repaired', found: 500, repaired: 500 })
    const level4After = await pool.query<{ idx: string; hash: Buffer }>(
      `SELECT idx, hash FROM ${t.treeNodes} WHERE level = 4 AND idx >= 2000 AND idx < 2500 ORDER BY idx`,
    )
    expect(level4.rows).toHaveLength(500)
    expect(level4After.rows.map((r) => [Number(r.idx), r.hash])).toEqual(
      level4.rows.map((r) => [Number(r.idx), r.hash]),
    )
    // A wide hole (more than one listing query's worth in one chunk): every hash of it is written back.
    const level1 = await pool.query<{ idx: string; hash: Buffer }>(
      `SELECT idx, hash FROM ${t.treeNodes} WHERE level = 1 AND idx >= 3000 AND idx < 10000 ORDER BY idx`,
    )
    await pool.query(`DELETE FROM ${t.treeNodes} WHERE level = 1 AND idx >= 3000 AND idx < 10000`)
    const wide = await TreeHoleCheck.start(pool, t, N, { pauseMs: 0 }).done
    expect(wide).toMatchObject({ state: 'repaired', found: 7000, repaired: 7000 })
    const level1After = await pool.query<{ idx: string; hash: Buffer }>(
      `SELECT idx, hash FROM ${t.treeNodes} WHERE level = 1 AND idx >= 3000 AND idx < 10000 ORDER BY idx`,
    )
    expect(level1After.rows).toEqual(level1.rows)
    // Every compact-range hash is its level's last; a damaged one no longer gives the head's root.
    const edge = await pool.query<{ hash: Buffer }>(
      `SELECT hash FROM ${t.treeNodes} WHERE level = 12 AND idx = 8`,
    )
    await pool.query(`UPDATE ${t.treeNodes} SET hash = sha256('x') WHERE level = 12 AND idx = 8`)
    const damaged = await loadPersistedTree(pool, t, noCheck)
    expect('rebuild' in damaged ? damaged.rebuild : '').toMatch(/do not give the persisted root/)
    await pool.query(`UPDATE ${t.treeNodes} SET hash = $1 WHERE level = 12 AND idx = 8`, [edge.rows[0]!.hash])

    // A hole inside a level (a hash neither the compact range nor the newest checkpoints read): the
    // start resumes; until the hash is back a proof using it rejects (the route answers 503; an export
    // fails rather than write a proof that does not verify). These leaves are synthetic, not rows: the
    // check finds the hole but cannot recompute the leaf from a row's line (tree.test.ts repairs real ones).
    const inner = await pool.query<{ hash: Buffer }>(
      `SELECT hash FROM ${t.treeNodes} WHERE level = 0 AND idx = 100`,
    )
    await pool.query(`DELETE FROM ${t.treeNodes} WHERE level = 0 AND idx = 100`)
    const holed = await loadPersistedTree(pool, t, noCheck)
    expect('store' in holed).toBe(true)
    const said: string[] = []
    const found = await TreeHoleCheck.start(pool, t, N, {
      pauseMs: 0,
      logger: { warn: (o, m) => said.push(`${m} ${JSON.stringify(o)}`) },
    }).done
    expect(found).toMatchObject({ state: 'unrepaired', found: 1, repaired: 0 })
    expect(found.detail).toMatch(/rows end before leaf 100/)
    expect(said.join('\n')).toMatch(/could not repair/)
    const proofs = new TreeProofs((holed as { store: TableNodeStore }).store)
    await expect(proofs.inclusion(101, N)).rejects.toThrow(/no hash at level 0, index 100/)
    expect((await proofs.inclusion(5000, N)).proof).toEqual(reference.inclusionProof(5000, N))
    await pool.query(`INSERT INTO ${t.treeNodes} (level, idx, hash) VALUES (0, 100, $1)`, [
      inner.rows[0]!.hash,
    ])
    expect(await TreeHoleCheck.start(pool, t, N, { pauseMs: 0 }).done).toMatchObject({
      state: 'ok',
      found: 0,
    })
    expect(leafHash(Buffer.from('synthetic leaf 100'))).toEqual(inner.rows[0]!.hash)
  }, 60_000)

  it('the hole check runs beside the service: stopped while a query is held it writes nothing after, and a later one repairs an inner hole so its proofs verify', async () => {
    await pool.query(`DELETE FROM ${t.treeHeads}`)
    await pool.query(
      `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root) VALUES ($1, $2, $3, $4, $5)`,
      [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
    )
    const saved = await pool.query<{ hash: Buffer }>(
      `DELETE FROM ${t.treeNodes} WHERE level = 1 AND idx = 7 RETURNING hash`,
    )
    expect(saved.rows).toHaveLength(1)
    // A db that holds every query until released, and records what was issued when.
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const issued: string[] = []
    const gated: TreeTableDb = {
      async query<R extends pg.QueryResultRow>(
        query: string | pg.QueryConfig<unknown[]>,
        values?: unknown[],
      ) {
        issued.push(typeof query === 'string' ? query : query.text)
        await held
        return pool.query<R>(query, values)
      },
    }
    const check = TreeHoleCheck.start(gated, t, N, { pauseMs: 0 })
    await new Promise((r) => setTimeout(r, 50))
    expect(check.status.state).toBe('running')
    expect(issued).toHaveLength(1)
    const stopping = check.stop()
    release()
    expect(await stopping).toMatchObject({ state: 'stopped' })
    const after = issued.length
    await new Promise((r) => setTimeout(r, 100))
    expect(issued).toHaveLength(after)
    expect(issued.some((q) => /INSERT/.test(q))).toBe(false)
    const still = await pool.query(`SELECT 1 FROM ${t.treeNodes} WHERE level = 1 AND idx = 7`)
    expect(still.rows).toHaveLength(0)
    // Proofs needing it fail until a check repairs it from leaves 14 and 15; then they verify.
    const proofs = new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) })
    await expect(proofs.inclusion(12, N)).rejects.toThrow(/no hash at level 1, index 7/)
    const repaired = await TreeHoleCheck.start(pool, t, N, { pauseMs: 0 }).done
    expect(repaired).toMatchObject({ state: 'repaired', found: 1, repaired: 1 })
    expect(repaired.durationMs).toBeGreaterThanOrEqual(0)
    const back = await pool.query<{ hash: Buffer }>(
      `SELECT hash FROM ${t.treeNodes} WHERE level = 1 AND idx = 7`,
    )
    expect(back.rows[0]!.hash).toEqual(saved.rows[0]!.hash)
    for (const index of [12, 13, 14, 15]) {
      expect((await proofs.inclusion(index, N)).proof).toEqual(reference.inclusionProof(index, N))
    }
  }, 60_000)

  it('an instance that rebuilds and stops midway while another keeps writing leaves no hole: the table still proves every leaf', async () => {
    // Instance A resumes the persisted tree at N (as a start does); instance B rebuilds from the first row.
    await pool.query(`DELETE FROM ${t.treeHeads}`)
    await pool.query(
      `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root) VALUES ($1, $2, $3, $4, $5)`,
      [head.size, head.eventSeq, head.lineHash, head.prevLineHash, head.root],
    )
    const loaded = await loadPersistedTree(pool, t, noCheck)
    const storageA = new PostgresTreeStorage(pool, t, (loaded as { store: TableNodeStore }).store)
    const treeA = new MerkleTree(storageA.open())
    const storageB = new PostgresTreeStorage(pool, t)
    const treeB = new MerkleTree(storageB.open())
    for (let i = 0; i < 1000; i++) treeB.append(Buffer.from(`synthetic leaf ${i}`))
    // B's first write (its head at 1000, after its 1000 leaves' hashes), then B stops.
    await storageB.persist({ ...head, size: 1000, root: treeB.root() })
    expect(await treeNodesMissing(pool, t, N)).toBeUndefined()
    // A keeps writing: the same 37 leaves the reference tree grew by, and its head above them.
    const grown = N + 37
    for (let i = N; i < grown; i++) treeA.append(Buffer.from(`later leaf ${i}`))
    expect(treeA.root()).toEqual(reference.root(grown))
    await storageA.persist({ ...head, size: grown, root: treeA.root() })
    const { rows } = await pool.query<{ size: string }>(`SELECT size FROM ${t.treeHeads}`)
    expect(rows.map((r) => Number(r.size))).toEqual([grown])
    // Every hash below A's head is in the table: a start finds none missing, and every leaf, also those
    // between B's stop and A's head, has its proof from the table.
    expect(await treeNodesMissing(pool, t, grown)).toBeUndefined()
    const fromTable = new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) })
    for (const index of [0, 999, 1000, 1001, 20_000, N - 1, N, grown - 1]) {
      expect((await fromTable.inclusion(index, grown)).proof, `${index}`).toEqual(
        reference.inclusionProof(index, grown),
      )
    }
  }, 60_000)
})
