import type { SessionLifecycleEvent } from '@care/schemas'
import type pg from 'pg'
import { deadlineOf, type SessionState, stateAfter } from '../sessions/session-repository.js'
import type { EventStore, StoredEvent } from '../store/event-store.js'
import { lastCheckpoint } from './checkpoints.js'
import { createToolPool, withClient } from './database.js'
import { chainEvent, GENESIS_HASH, storedEventOf } from './event-chain.js'
import { unavailable } from './pg-errors.js'
import { recordOfRow, type SessionRow } from './postgres-session-repository.js'
import { DEFAULT_SCHEMA, type SchemaNames, schemaNames } from './schema-names.js'

const SESSION_COLUMNS = [
  'session_id',
  'user_id',
  'started_at',
  'last_activity_at',
  'idle_timeout_ms',
  'max_duration_ms',
  'expires_at',
  'event_count',
  'last_hash',
  'last_event_at',
  'ended_at',
  'end_reason',
] as const

/** A session's state and its chain head: what one sessions-table row holds. */
export interface ChainedSession {
  state: SessionState
  lastHash: string
}

function columnsOf({ state, lastHash }: ChainedSession): Record<(typeof SESSION_COLUMNS)[number], unknown> {
  return {
    session_id: state.sessionId,
    user_id: state.userId,
    started_at: state.startedAt,
    last_activity_at: state.lastActivityAt,
    idle_timeout_ms: state.idleTimeoutMs,
    max_duration_ms: state.maxDurationMs,
    expires_at: deadlineOf(state).at,
    event_count: state.eventCount,
    last_hash: lastHash,
    last_event_at: state.lastEventAt,
    ended_at: state.end?.endedAt ?? null,
    end_reason: state.end?.reason ?? null,
  }
}

/**
 * Inserts chained events (multi-row) and upserts their sessions' rows, inside the caller's
 * transaction. Used by `append` and by the JSONL import.
 *
 * @example
 * await insertChained(client, names, rows, [{ state, lastHash }])
 */
export async function insertChained(
  client: pg.PoolClient,
  t: SchemaNames,
  rows: { event: SessionLifecycleEvent; sessionSeq: number; prevHash: string; body: string; hash: string }[],
  sessions: ChainedSession[],
): Promise<number[]> {
  const { rows: inserted } = await client.query<{ seq: string }>(
    `INSERT INTO ${t.events}
            (session_id, session_seq, event, record_id, input_record_id, input_digest, event_time, body, prev_hash, hash)
     SELECT a, b, c, d, e, f, g, h, i, j FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                          $8::text[], $9::text[], $10::text[]) WITH ORDINALITY AS u(a, b, c, d, e, f, g, h, i, j, ord)
      ORDER BY ord
     RETURNING seq`,
    [
      rows.map((r) => r.event.session_id),
      rows.map((r) => r.sessionSeq),
      rows.map((r) => r.event.event),
      rows.map((r) => r.event.record_id),
      rows.map((r) => ('input_record_id' in r.event ? (r.event.input_record_id ?? null) : null)),
      rows.map((r) => ('input_digest' in r.event ? (r.event.input_digest ?? null) : null)),
      rows.map((r) => r.event.timestamp),
      rows.map((r) => r.body),
      rows.map((r) => r.prevHash),
      rows.map((r) => r.hash),
    ],
  )
  if (sessions.length > 0) {
    const rows = sessions.map(columnsOf)
    const types = [
      'text',
      'text',
      'bigint',
      'bigint',
      'bigint',
      'bigint',
      'bigint',
      'int',
      'text',
      'bigint',
      'bigint',
      'text',
    ]
    await client.query(
      `INSERT INTO ${t.sessions} (${SESSION_COLUMNS.join(', ')})
       SELECT * FROM unnest(${types.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})
       ON CONFLICT (session_id) DO UPDATE SET
         ${SESSION_COLUMNS.slice(1)
           .map((c) => `${c} = excluded.${c}`)
           .join(', ')}`,
      SESSION_COLUMNS.map((column) => rows.map((row) => row[column])),
    )
  }
  return inserted.map((r) => Number(r.seq))
}

/**
 * The PostgreSQL store behind the `EventStore` interface, for tools: `scan()` streams every event
 * in log order (timestamp, then seq) from one consistent snapshot, so replay and export work as on
 * the JSONL log; `append` chains one event into its session under the session row's lock; `head()`
 * is the newest checkpoint (`seq` = the last seq it covers). The multi-instance service itself uses
 * `PostgresSessionRepository`, which batches and never holds a lock across a round trip.
 *
 * @example
 * const store = await PostgresEventStore.open({ url: process.env.DATABASE_URL! })
 * for await (const event of store.scan()) out.write(`${JSON.stringify(event)}\n`)
 * await store.close()
 */
export class PostgresEventStore implements EventStore<number> {
  private checkpointHead = { seq: 0, hash: GENESIS_HASH }

  private constructor(
    readonly pool: pg.Pool,
    readonly names: SchemaNames,
    private readonly ownsPool: boolean,
  ) {}

  /** A store over an existing pool (not closed by `close()`); `head()` stays at genesis until `refreshHead()`. */
  static over(pool: pg.Pool, schema: string = DEFAULT_SCHEMA): PostgresEventStore {
    return new PostgresEventStore(pool, schemaNames(schema), false)
  }

  static async open(options: { url?: string; pool?: pg.Pool; schema?: string }): Promise<PostgresEventStore> {
    const pool = options.pool ?? createToolPool(options.url, 2)
    const store = new PostgresEventStore(pool, schemaNames(options.schema ?? DEFAULT_SCHEMA), !options.pool)
    await store.refreshHead()
    return store
  }

  /** Re-reads the newest checkpoint for `head()`. */
  async refreshHead(): Promise<{ seq: number; hash: string }> {
    try {
      const last = await lastCheckpoint(this.pool, this.names)
      if (last) this.checkpointHead = { seq: last.to_seq, hash: last.hash }
      return this.checkpointHead
    } catch (error) {
      throw unavailable(error)
    }
  }

  async append(event: SessionLifecycleEvent): Promise<{ stored: StoredEvent; ref: number }> {
    return withClient(this.pool, async (client) => {
      try {
        await client.query('BEGIN')
        const { rows } = await client.query<SessionRow>(
          `SELECT * FROM ${this.names.sessions} WHERE session_id = $1 FOR UPDATE`,
          [event.session_id],
        )
        const previous = rows[0] ? recordOfRow(rows[0]) : undefined
        const prevHash = previous?.lastHash ?? GENESIS_HASH
        const { body, hash } = chainEvent(event, prevHash)
        const state = stateAfter(previous, event)
        const [seq] = await insertChained(
          client,
          this.names,
          [{ event, sessionSeq: state.eventCount, prevHash, body, hash }],
          [{ state, lastHash: hash }],
        )
        await client.query('COMMIT')
        return { stored: storedEventOf({ seq: seq!, body, hash }), ref: seq! }
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error instanceof Error && error.message.includes('session') && !('code' in error)
          ? error
          : unavailable(error)
      }
    }).catch((error: unknown) => {
      throw error instanceof Error && error.message.includes('session') && !('code' in error)
        ? error
        : unavailable(error)
    })
  }

  async read(refs: readonly number[]): Promise<StoredEvent[]> {
    const { rows } = await this.pool
      .query<{ seq: string; body: string; hash: string }>(
        `SELECT seq, body, hash FROM ${this.names.events} WHERE seq = ANY($1::bigint[])`,
        [refs],
      )
      .catch((error: unknown) => {
        throw unavailable(error)
      })
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r]))
    return refs.map((ref) => {
      const row = bySeq.get(ref)
      if (!row) throw new Error(`no event with seq ${ref}`)
      return storedEventOf(row)
    })
  }

  /** Every event ordered by (timestamp, seq) from one REPEATABLE READ snapshot, paged by key. */
  async *scan(): AsyncIterable<StoredEvent> {
    const client = await this.pool.connect()
    let broken: Error | undefined
    const onError = (error: Error) => {
      broken = error
    }
    client.on('error', onError)
    let committed = false
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      let after: { time: Date; seq: string } | undefined
      for (;;) {
        const { rows } = await client.query<{ seq: string; body: string; hash: string; event_time: Date }>(
          after
            ? `SELECT seq, body, hash, event_time FROM ${this.names.events}
                WHERE (event_time, seq) > ($1, $2) ORDER BY event_time, seq LIMIT 2000`
            : `SELECT seq, body, hash, event_time FROM ${this.names.events} ORDER BY event_time, seq LIMIT 2000`,
          after ? [after.time, after.seq] : [],
        )
        for (const row of rows) yield storedEventOf(row)
        if (rows.length < 2000) break
        const last = rows.at(-1)!
        after = { time: last.event_time, seq: last.seq }
      }
      await client.query('COMMIT')
      committed = true
    } finally {
      client.off('error', onError)
      // A consumer that stopped early leaves the snapshot transaction open: drop that connection.
      client.release(broken ?? !committed)
    }
  }

  head(): { seq: number; hash: string } {
    return this.checkpointHead
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end()
  }
}
