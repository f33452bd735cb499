import type pg from 'pg'
import { withClient } from './database.js'
import { checkpointHash, GENESIS_HASH, RangeDigest } from './event-chain.js'
import type { SchemaNames } from './schema-names.js'

/** A row of the checkpoint chain. */
export interface Checkpoint {
  checkpoint_no: number
  from_seq: number
  to_seq: number
  event_count: number
  events_digest: string
  prev_hash: string
  hash: string
}

const MAX_RANGE_ROWS = 100_000

/**
 * Appends the next checkpoint: it covers every event with `from_seq < seq <= to_seq`, where
 * `from_seq` is the previous checkpoint's `to_seq` and `to_seq` comes from `events_watermark()`
 * (a brief SHARE lock that waits for inserts in flight, so no seq at or below it can still appear).
 * Its hash chains to the previous checkpoint. An advisory lock keeps instances from duplicating
 * the work, and the primary key on `checkpoint_no` from ever writing two. Returns the new
 * checkpoint, or undefined when there was nothing new or another instance was at it.
 *
 * @example
 * const checkpoint = await writeCheckpoint(pool, schemaNames())
 */
export async function writeCheckpoint(pool: pg.Pool, t: SchemaNames): Promise<Checkpoint | undefined> {
  return withClient(pool, async (client) => {
    const { rows: locked } = await client.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock(hashtext($1)) AS ok',
      [`care-sessions:checkpoint:${t.raw}`],
    )
    if (!locked[0]!.ok) return undefined
    try {
      const last = await lastCheckpoint(client, t)
      const from = last?.to_seq ?? 0
      const { rows } = await client.query<{ high: string }>(`SELECT ${t.watermark} AS high`)
      const high = Math.min(Number(rows[0]!.high), from + MAX_RANGE_ROWS)
      if (high <= from) return undefined
      const digest = new RangeDigest()
      let cursor = from
      for (;;) {
        const page = await client.query<{ seq: string; hash: string }>(
          `SELECT seq, hash FROM ${t.events} WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 10000`,
          [cursor, high],
        )
        for (const row of page.rows) digest.add(row.seq, row.hash)
        if (page.rows.length < 10_000) break
        cursor = Number(page.rows.at(-1)!.seq)
      }
      const fields = {
        checkpoint_no: (last?.checkpoint_no ?? 0) + 1,
        from_seq: from,
        to_seq: high,
        event_count: digest.count,
        events_digest: digest.hex(),
        prev_hash: last?.hash ?? GENESIS_HASH,
      }
      const checkpoint: Checkpoint = { ...fields, hash: checkpointHash(fields) }
      const inserted = await client.query(
        `INSERT INTO ${t.checkpoints} (checkpoint_no, from_seq, to_seq, event_count, events_digest, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [
          checkpoint.checkpoint_no,
          checkpoint.from_seq,
          checkpoint.to_seq,
          checkpoint.event_count,
          checkpoint.events_digest,
          checkpoint.prev_hash,
          checkpoint.hash,
        ],
      )
      return inserted.rowCount === 1 ? checkpoint : undefined
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`care-sessions:checkpoint:${t.raw}`])
    }
  })
}

/**
 * The newest checkpoint, or undefined before the first.
 *
 * @example
 * const head = await lastCheckpoint(pool, schemaNames())
 */
export async function lastCheckpoint(
  db: pg.Pool | pg.PoolClient,
  t: SchemaNames,
): Promise<Checkpoint | undefined> {
  const { rows } = await db.query<Record<keyof Checkpoint, string>>(
    `SELECT * FROM ${t.checkpoints} ORDER BY checkpoint_no DESC LIMIT 1`,
  )
  const row = rows[0]
  return row ? checkpointOfRow(row) : undefined
}

/**
 * Converts a checkpoint row (bigints arrive as strings) to numbers.
 *
 * @example
 * const checkpoint = checkpointOfRow(row)
 */
export function checkpointOfRow(row: Record<string, unknown>): Checkpoint {
  return {
    checkpoint_no: Number(row.checkpoint_no),
    from_seq: Number(row.from_seq),
    to_seq: Number(row.to_seq),
    event_count: Number(row.event_count),
    events_digest: String(row.events_digest),
    prev_hash: String(row.prev_hash),
    hash: String(row.hash),
  }
}
