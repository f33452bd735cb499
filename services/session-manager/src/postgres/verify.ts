import type pg from 'pg'
import { type Checkpoint, checkpointOfRow } from './checkpoints.js'
import { createToolPool, withClient } from './database.js'
import { checkpointHash, GENESIS_HASH, RangeDigest, sha256Hex } from './event-chain.js'
import { DEFAULT_SCHEMA, type SchemaNames, schemaNames } from './schema-names.js'

/**
 * The first problem `verifyPostgres` found: the event row (`seq`) or checkpoint (`checkpoint_no`)
 * and why it is bad.
 *
 * @example
 * if (!report.ok) console.error(`seq ${report.problem.seq}: ${report.problem.reason}`)
 */
export interface PostgresVerifyProblem {
  seq?: number
  checkpoint_no?: number
  reason: string
}

/**
 * What `verifyPostgres` counted. `unanchored` events come after the newest checkpoint: their
 * session chains are checked, but a whole deleted session among them would not be noticed until
 * the next checkpoint covers the range.
 *
 * @example
 * console.log(`${report.records} events, ${report.checkpoints} checkpoints, ${report.unanchored} not yet checkpointed`)
 */
export interface PostgresVerifyCounts {
  records: number
  sessions: number
  events: Record<string, number>
  checkpoints: number
  unanchored: number
  /** The newest checkpoint (publish it elsewhere to anchor the database's history). */
  head?: Checkpoint
  durationMs: number
}

/**
 * Result of `verifyPostgres`.
 *
 * @example
 * process.exitCode = (await verifyPostgres({ url })).ok ? 0 : 1
 */
export type PostgresVerifyReport = PostgresVerifyCounts &
  ({ ok: true } | { ok: false; problem: PostgresVerifyProblem })

/**
 * Options of `verifyPostgres`: a pool or a URL, the schema, and optionally a checkpoint published
 * elsewhere that must still be in the chain unchanged.
 *
 * @example
 * await verifyPostgres({ url: process.env.DATABASE_URL!, expectedCheckpoint: { checkpoint_no: 12, hash } })
 */
export interface VerifyPostgresOptions {
  url?: string
  pool?: pg.Pool
  schema?: string
  expectedCheckpoint?: { checkpoint_no: number; hash: string }
}

interface EventRow {
  seq: string
  session_id: string
  session_seq: number
  event: string
  record_id: string
  input_record_id: string | null
  input_digest: string | null
  event_time: Date
  body: string
  prev_hash: string
  hash: string
}

interface SessionChain {
  count: number
  hash: string
  ended: boolean
  time: number
}

const PAGE = 5000

/**
 * Audits the PostgreSQL event store from one consistent snapshot, the database counterpart of
 * `verifyLog`: every row's `hash` is the SHA-256 of its stored canonical `body`, the body agrees
 * with the indexed columns, each session is an unbroken chain (start first, positions 1..n,
 * `prev_hash` links, non-decreasing timestamps, nothing after its one end), and the checkpoint
 * chain is contiguous, correctly hashed and matches the events of each range, so a deleted,
 * inserted or rewritten row anywhere below the newest checkpoint is found. Stops at the first problem.
 *
 * @example
 * const report = await verifyPostgres({ url: 'postgres://auditor@db/care' })
 * if (!report.ok) console.error(report.problem)
 */
export async function verifyPostgres(options: VerifyPostgresOptions): Promise<PostgresVerifyReport> {
  const started = performance.now()
  const pool = options.pool ?? createToolPool(options.url, 1)
  const t = schemaNames(options.schema ?? DEFAULT_SCHEMA)
  try {
    const result = await withClient(pool, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const report = await verifySnapshot(client, t, options)
      await client.query('COMMIT')
      return report
    })
    return { ...result, durationMs: Math.round(performance.now() - started) }
  } finally {
    if (!options.pool) await pool.end()
  }
}

async function verifySnapshot(
  client: pg.PoolClient,
  t: SchemaNames,
  options: VerifyPostgresOptions,
): Promise<PostgresVerifyReport> {
  const counts: PostgresVerifyCounts = {
    records: 0,
    sessions: 0,
    events: {},
    checkpoints: 0,
    unanchored: 0,
    durationMs: 0,
  }
  const sessions = new Map<string, SessionChain>()
  const checkpoints = new CheckpointReader(client, t)
  let current = await checkpoints.next(undefined)
  let digest = new RangeDigest()
  const fail = (problem: PostgresVerifyProblem): PostgresVerifyReport => ({
    ...counts,
    sessions: sessions.size,
    ok: false,
    problem,
  })

  // Closes `current` (its range is complete) and moves to the next checkpoint.
  const closeCheckpoint = async (): Promise<string | undefined> => {
    const c = current as Checkpoint
    if (digest.count !== c.event_count) {
      return `checkpoint ${c.checkpoint_no} counts ${c.event_count} events in (${c.from_seq}, ${c.to_seq}], the table has ${digest.count}`
    }
    if (digest.hex() !== c.events_digest) {
      return `checkpoint ${c.checkpoint_no}: the events in (${c.from_seq}, ${c.to_seq}] differ from when it was written`
    }
    counts.checkpoints++
    counts.head = c
    const next = await checkpoints.next(c)
    if (typeof next === 'string') return next
    current = next
    digest = new RangeDigest()
    return undefined
  }

  if (typeof current === 'string') return fail({ checkpoint_no: 1, reason: current })
  let after = 0
  for (;;) {
    const { rows } = await client.query<EventRow>(
      `SELECT seq, session_id, session_seq, event, record_id, input_record_id, input_digest, event_time, body, prev_hash, hash
         FROM ${t.events} WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`,
      [after],
    )
    for (const row of rows) {
      const seq = Number(row.seq)
      while (current && seq > current.to_seq) {
        const reason = await closeCheckpoint()
        if (reason) return fail({ checkpoint_no: (current as Checkpoint).checkpoint_no, reason })
      }
      const reason = checkRow(row, sessions)
      if (reason) return fail({ seq, reason })
      if (current) digest.add(row.seq, row.hash)
      else counts.unanchored++
      counts.records++
      counts.events[row.event] = (counts.events[row.event] ?? 0) + 1
    }
    if (rows.length < PAGE) break
    after = Number(rows.at(-1)!.seq)
  }
  while (current) {
    const reason = await closeCheckpoint()
    if (reason) return fail({ checkpoint_no: (current as Checkpoint).checkpoint_no, reason })
  }
  const expected = options.expectedCheckpoint
  if (expected) {
    const found = await client.query<{ hash: string }>(
      `SELECT hash FROM ${t.checkpoints} WHERE checkpoint_no = $1`,
      [expected.checkpoint_no],
    )
    if (found.rows[0]?.hash !== expected.hash) {
      return fail({
        checkpoint_no: expected.checkpoint_no,
        reason: found.rows[0]
          ? 'checkpoint hash differs from the expected (published) one'
          : 'the expected (published) checkpoint is missing',
      })
    }
  }
  return { ...counts, sessions: sessions.size, ok: true }
}

function checkRow(row: EventRow, sessions: Map<string, SessionChain>): string | undefined {
  if (sha256Hex(row.body) !== row.hash) return 'hash does not match the stored body'
  let body: Record<string, unknown>
  try {
    body = JSON.parse(row.body) as Record<string, unknown>
  } catch {
    return 'body is not valid JSON'
  }
  if (body.prev_hash !== row.prev_hash) return 'prev_hash column differs from the hashed body'
  for (const field of ['session_id', 'event', 'record_id'] as const) {
    if (body[field] !== row[field]) return `${field} column differs from the hashed body`
  }
  if ((body.input_record_id ?? null) !== row.input_record_id)
    return 'input_record_id column differs from the hashed body'
  if ((body.input_digest ?? null) !== row.input_digest)
    return 'input_digest column differs from the hashed body'
  const time = Date.parse(String(body.timestamp))
  if (time !== row.event_time.getTime()) return 'event_time column differs from the hashed timestamp'
  const chain = sessions.get(row.session_id)
  if (!chain) {
    if (row.event !== 'session.start')
      return `first event of session ${row.session_id} is ${row.event}, not session.start`
    if (row.session_seq !== 1) return `session ${row.session_id} starts at position ${row.session_seq}`
    if (row.prev_hash !== GENESIS_HASH) return 'a session.start must chain to the genesis hash'
    sessions.set(row.session_id, { count: 1, hash: row.hash, ended: false, time })
    return undefined
  }
  if (row.event === 'session.start') return `second session.start for session ${row.session_id}`
  if (chain.ended) return `${row.event} after the end of session ${row.session_id}`
  if (row.session_seq !== chain.count + 1) {
    return `session ${row.session_id}: position ${row.session_seq} follows ${chain.count} (an event is missing)`
  }
  if (row.prev_hash !== chain.hash)
    return `prev_hash does not match the previous event of session ${row.session_id}`
  if (time < chain.time) return `timestamp goes backwards within session ${row.session_id}`
  chain.count++
  chain.hash = row.hash
  chain.time = time
  chain.ended = row.event === 'session.end'
  return undefined
}

/** Reads the checkpoint chain in order, checking each link as it goes. */
class CheckpointReader {
  constructor(
    private readonly client: pg.PoolClient,
    private readonly t: SchemaNames,
  ) {}

  /** The checkpoint after `previous` (undefined at the end), or the reason the link is broken. */
  async next(previous: Checkpoint | undefined): Promise<Checkpoint | undefined | string> {
    const number = (previous?.checkpoint_no ?? 0) + 1
    const { rows } = await this.client.query(
      `SELECT * FROM ${this.t.checkpoints} WHERE checkpoint_no >= $1 ORDER BY checkpoint_no LIMIT 1`,
      [number],
    )
    if (!rows[0]) return undefined
    const c = checkpointOfRow(rows[0])
    if (c.checkpoint_no !== number) return `checkpoint ${number} is missing`
    if (c.from_seq !== (previous?.to_seq ?? 0))
      return `checkpoint ${number} does not start where ${number - 1} ended`
    if (c.prev_hash !== (previous?.hash ?? GENESIS_HASH))
      return `checkpoint ${number}: prev_hash does not match`
    const { hash, ...fields } = c
    if (checkpointHash(fields) !== hash) return `checkpoint ${number}: hash does not match its fields`
    return c
  }
}
