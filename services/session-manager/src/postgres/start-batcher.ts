import type { SessionManagerStartOutput } from '@care/schemas'
import type pg from 'pg'
import { chainEvent, GENESIS_HASH } from './event-chain.js'
import { unavailable } from './pg-errors.js'
import type { SchemaNames } from './schema-names.js'

/** One start waiting to be written. */
export interface PendingStart {
  event: SessionManagerStartOutput
  digest: string
  startedAt: number
  expiresAt: number
}

/** What became of a start: written now, answered before (by any instance), or to be tried again. */
export type StartResult =
  | { kind: 'inserted' }
  | { kind: 'existing'; digest: string; body: string }
  | { kind: 'retry' }

interface Queued extends PendingStart {
  resolve(result: StartResult): void
  reject(error: unknown): void
}

const MAX_BATCH = 500

/**
 * Batches in flight at once by default: one being committed while the next fills. More only splits
 * the same concurrent starts into smaller batches (issue 18: at 10 concurrent starts, 4 in flight
 * committed 1.8 starts per transaction and 2 about 3, for less CPU per start in node and PostgreSQL).
 *
 * @example
 * const batcher = new StartBatcher(pool, names, options.writeConcurrency ?? DEFAULT_START_BATCHES)
 */
export const DEFAULT_START_BATCHES = 2

/**
 * Writes concurrent starts together: while `concurrency` batches are in flight, new starts queue,
 * and the next free slot writes the whole queue as one multi-row statement (one commit, one WAL
 * flush). `ON CONFLICT DO NOTHING` on the unique `input_record_id` turns a retry into "already
 * there", which is then read back, so one duplicate never fails its neighbours.
 *
 * @example
 * const result = await batcher.submit({ event, digest, startedAt, expiresAt })
 */
export class StartBatcher {
  private queue: Queued[] = []
  private inFlight = 0
  private readonly idle: (() => void)[] = []

  constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
    private readonly concurrency: number = DEFAULT_START_BATCHES,
  ) {}

  submit(start: PendingStart): Promise<StartResult> {
    // Refused alone, before it joins a batch: PostgreSQL would fail the whole statement on it, and
    // every neighbour (and every retry of it) with a 503.
    const unfit = unstorableField(start)
    if (unfit) return Promise.reject(new RangeError(`start event: ${unfit} cannot be stored in PostgreSQL`))
    return new Promise((resolve, reject) => {
      this.queue.push({ ...start, resolve, reject })
      this.pump()
    })
  }

  /** Resolves once nothing is queued or in flight. */
  drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      this.inFlight++
      void this.write(batch).finally(() => {
        this.inFlight--
        this.pump()
        if (this.inFlight === 0 && this.queue.length === 0) for (const done of this.idle.splice(0)) done()
      })
    }
  }

  private async write(batch: Queued[]): Promise<void> {
    try {
      const { rows } = await this.pool.query<[string]>({
        // Named: parsed and planned once per connection, not per batch.
        name: `care-start-batch:${this.names.raw}`,
        // The batch is one JSON parameter (see `batchJson`), read by `json_to_recordset`: cheaper to
        // encode in node than one text[] per column, and one value for PostgreSQL to parse.
        text: `WITH input AS (
           SELECT * FROM json_to_recordset($1::json)
             AS u(o integer, session_id text, record_id text, input_record_id text, input_digest text,
                  event_time timestamptz, body text, hash text, user_id text, started_at bigint,
                  idle_timeout_ms bigint, max_duration_ms bigint, expires_at bigint)
         ), inserted AS (
           INSERT INTO ${this.names.events}
                  (session_id, session_seq, event, record_id, input_record_id, input_digest, event_time, body, prev_hash, hash)
           SELECT session_id, 1, 'session.start', record_id, input_record_id, input_digest, event_time, body, $2, hash
             FROM input ORDER BY o
           ON CONFLICT DO NOTHING
           RETURNING session_id
         ), opened AS (
           INSERT INTO ${this.names.sessions}
                  (session_id, user_id, started_at, last_activity_at, idle_timeout_ms, max_duration_ms, expires_at,
                   event_count, last_hash, last_event_at)
           SELECT i.session_id, i.user_id, i.started_at, i.started_at, i.idle_timeout_ms, i.max_duration_ms, i.expires_at,
                  1, i.hash, i.started_at
             FROM input i JOIN inserted USING (session_id)
         )
         SELECT session_id FROM inserted`,
        values: [batchJson(batch), GENESIS_HASH],
        // Rows as arrays: one string each, no object per row.
        rowMode: 'array',
      })
      const inserted = new Set(rows.map((r) => r[0]))
      const skipped = batch.filter((item) => !inserted.has(item.event.session_id))
      const existing = new Map<string, { digest: string; body: string }>()
      if (skipped.length > 0) {
        const found = await this.pool.query<{ input_record_id: string; input_digest: string; body: string }>(
          `SELECT input_record_id, input_digest, body FROM ${this.names.events} WHERE input_record_id = ANY($1::text[])`,
          [skipped.map((item) => item.event.input_record_id)],
        )
        for (const row of found.rows)
          existing.set(row.input_record_id, { digest: row.input_digest, body: row.body })
      }
      for (const item of batch) {
        if (inserted.has(item.event.session_id)) {
          item.resolve({ kind: 'inserted' })
          continue
        }
        const prior = existing.get(item.event.input_record_id)
        item.resolve(prior ? { kind: 'existing', ...prior } : { kind: 'retry' })
      }
    } catch (error) {
      const wrapped = unavailable(error)
      for (const item of batch) item.reject(wrapped)
    }
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * The first column value of `start` that PostgreSQL cannot hold as given (text with U+0000 or an
 * unpaired surrogate, a number that is not a safe integer), or undefined. The HTTP layer's schema
 * already refuses such input; this keeps a direct caller of the lifecycle from failing a whole batch.
 * `body` is exempt: it is JSON text with those characters escaped.
 *
 * @example
 * unstorableField({ ...start, event: { ...start.event, user_id: 'a\u0000b' } }) // 'user_id'
 */
export function unstorableField(start: PendingStart): string | undefined {
  const { event } = start
  const texts: [string, unknown][] = [
    ['session_id', event.session_id],
    ['record_id', event.record_id],
    ['input_record_id', event.input_record_id],
    ['input_digest', start.digest],
    ['timestamp', event.timestamp],
    ['user_id', event.user_id],
  ]
  for (const [name, value] of texts)
    if (typeof value !== 'string' || value.includes('\u0000') || LONE_SURROGATE.test(value)) return name
  const numbers: [string, unknown][] = [
    ['started_at', start.startedAt],
    ['idle_timeout_ms', event.idle_timeout_ms],
    ['max_duration_ms', event.max_duration_ms],
    ['expires_at', start.expiresAt],
  ]
  for (const [name, value] of numbers) if (!Number.isSafeInteger(value)) return name
  return undefined
}

/**
 * The JSON parameter of one batch statement: an array with one object per start, in batch order
 * (`o`), its keys the column names `json_to_recordset` reads (the start event's chained body and
 * hash, computed here). `submit` admits only text PostgreSQL can hold and safe integers
 * (`unstorableField`); `body` is JSON text (its control characters and lone surrogates already
 * escaped), so PostgreSQL reads back exactly the text that was hashed.
 *
 * @example
 * await pool.query({ text: 'SELECT * FROM json_to_recordset($1::json) AS u(o integer, ...)', values: [batchJson(batch)] })
 */
export function batchJson(batch: readonly PendingStart[]): string {
  return JSON.stringify(
    batch.map((item, o) => {
      const { body, hash } = chainEvent(item.event, GENESIS_HASH)
      return {
        o,
        session_id: item.event.session_id,
        record_id: item.event.record_id,
        input_record_id: item.event.input_record_id,
        input_digest: item.digest,
        event_time: item.event.timestamp,
        body,
        hash,
        user_id: item.event.user_id,
        started_at: item.startedAt,
        idle_timeout_ms: item.event.idle_timeout_ms,
        max_duration_ms: item.event.max_duration_ms,
        expires_at: item.expiresAt,
      }
    }),
  )
}
