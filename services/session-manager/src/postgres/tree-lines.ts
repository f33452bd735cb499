import { encodeRecord, GENESIS_HASH } from '@care/event-log'
import type pg from 'pg'
import type { StoredEvent } from '../store/event-store.js'
import { eventOfBody } from './event-chain.js'
import { unavailable } from './pg-errors.js'
import type { SchemaNames } from './schema-names.js'
import type { TreeTableDb } from './tree-table.js'

const PAGE = 5000

/**
 * The highest `seq` below which every row is committed (`events_watermark()`: a brief SHARE lock that
 * waits for inserts in flight). Rows up to it are final: no transaction can still add one below it.
 * A failed query rejects with `StoreUnavailableError` (as do the cursor's reads).
 *
 * @example
 * const high = await committedHigh(pool, schemaNames())
 */
export async function committedHigh(db: pg.Pool | pg.PoolClient, t: SchemaNames): Promise<number> {
  try {
    const { rows } = await db.query<{ high: string }>(`SELECT ${t.watermark} AS high`)
    return Number(rows[0]!.high)
  } catch (error) {
    throw unavailable(error)
  }
}

/**
 * The leaves of the PostgreSQL store's Merkle tree: each committed event row, in `seq` order, as the
 * exact line the embedded log would write for it (`encodeRecord`: the event, `seq` = its 1-based
 * position among the rows, `prev_hash` = the previous line's `hash`, canonical JSON, `hash` last),
 * without the newline. So the same events give the same lines, and the same root at every size, in
 * either store (`care-sessions db export` writes these very lines). Gaps in the table's `seq` (an
 * insert rolled back) are skipped; leaf positions count rows. The cursor keeps its place, so `read`
 * continues where the last call stopped.
 *
 * @example
 * const cursor = new TreeLineCursor()
 * for await (const line of cursor.read(pool, t, await committedHigh(pool, t))) range.appendEntry(line)
 */
export class TreeLineCursor {
  /** The table `seq` of the last row read (0 before the first). */
  eventSeq = 0
  /** Lines read so far (the tree size they make). */
  leaves = 0
  /** The `hash` of the last line (`GENESIS_HASH` before the first). */
  lastHash = GENESIS_HASH
  /** The `hash` of the line before the last (`GENESIS_HASH` before the second). */
  prevHash = GENESIS_HASH

  /** A cursor that continues after a known position (a persisted tree's head); default the start. */
  constructor(from?: { size: number; eventSeq: number; lineHash: string; prevLineHash: string }) {
    if (from === undefined) return
    this.eventSeq = from.eventSeq
    this.leaves = from.size
    this.lastHash = from.lineHash
    this.prevHash = from.prevLineHash
  }

  /** Lines of the rows after the last one read, up to table seq `high` (pass `committedHigh`). */
  async *read(db: TreeTableDb, t: SchemaNames, high: number): AsyncGenerator<Buffer> {
    while (this.eventSeq < high) {
      let rows: { seq: string; body: string }[]
      try {
        ;({ rows } = await db.query<{ seq: string; body: string }>(
          `SELECT seq, body FROM ${t.events} WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${PAGE}`,
          [this.eventSeq, high],
        ))
      } catch (error) {
        throw unavailable(error)
      }
      for (const row of rows) {
        const { record, line } = encodeRecord(eventOfBody(row.body), this.leaves + 1, this.lastHash)
        this.eventSeq = Number(row.seq)
        this.leaves++
        this.prevHash = this.lastHash
        this.lastHash = record.hash
        yield line.subarray(0, line.length - 1)
      }
      if (rows.length < PAGE) break
    }
  }
}

/**
 * Every committed row of the store as its tree line (see `TreeLineCursor`), up to the watermark taken
 * when the iteration starts.
 *
 * @example
 * const report = await verifyAgainstCheckpoints({ lines: postgresTreeLines(pool, t), checkpointsDir, verifiers })
 */
export async function* postgresTreeLines(db: pg.Pool, t: SchemaNames): AsyncGenerator<Buffer> {
  const high = await committedHigh(db, t)
  yield* new TreeLineCursor().read(db, t, high)
}

/**
 * The audit view of the PostgreSQL store when it keeps a Merkle tree: every committed event as its tree
 * line's record (the embedded log's form: `seq` = leaf position, global `prev_hash`/`hash`), in `seq`
 * order, and `lineOf` gives back the tree line itself, so `GET /export` writes the very bytes the tree's
 * leaves hash (U+2028/U+2029/U+0085 escaped as in the leaf) and its records can carry proofs.
 *
 * @example
 * const manifest = await runExport(postgresTreeAuditSource(pool, t), filters, write, { prover })
 */
export function postgresTreeAuditSource(
  db: pg.Pool,
  t: SchemaNames,
): { scan(): AsyncIterable<StoredEvent>; lineOf(event: StoredEvent): Buffer | undefined } {
  // Each yielded event remembers the line it was parsed from (dropped with the event).
  const lines = new WeakMap<StoredEvent, Buffer>()
  return {
    async *scan() {
      for await (const line of postgresTreeLines(db, t)) {
        const event = JSON.parse(line.toString('utf8')) as StoredEvent
        lines.set(event, line)
        yield event
      }
    },
    lineOf: (event) => lines.get(event),
  }
}
