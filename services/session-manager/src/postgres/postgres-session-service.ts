import type {
  SessionEndReason,
  SessionLifecycleEvent,
  SessionManagerEndInput,
  SessionManagerEndOutput,
  SessionManagerStartInput,
  SessionManagerStartOutput,
  SessionManagerTouchInput,
  SessionManagerTouchOutput,
} from '@care/schemas'
import type pg from 'pg'
import type { IdFactory } from '../ids/id-factory.js'
import {
  checkRecordIdTime,
  explicitEndEvent,
  iso,
  type RequestKind,
  requestDigest,
  type SessionFacts,
  sessionDeadline,
  sessionEndedError,
  startEvent,
  timeoutEndEvent,
  touchEvent,
} from '../sessions/lifecycle-events.js'
import { SessionError } from '../sessions/session-errors.js'
import type {
  Outcome,
  SessionLifecycle,
  SessionSummary,
  TimelinePage,
} from '../sessions/session-lifecycle.js'
import type { Clock, SessionPolicy, SessionServiceOptions } from '../sessions/session-service.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { writeCheckpoint } from './checkpoints.js'
import { assertDurable, createPool, type PostgresConnectionOptions, withClient } from './database.js'
import { chainEvent, eventOfBody, storedEventOf } from './event-chain.js'
import { migrate } from './migrations.js'
import { isUniqueViolation, unavailable } from './pg-errors.js'
import { DEFAULT_SCHEMA, type SchemaNames, schemaNames } from './schema-names.js'
import { StartBatcher } from './start-batcher.js'

/**
 * Options of {@link PostgresSessionService}: the same policy, id factory, clock and logger as the
 * embedded service, plus where the database is.
 */
export interface PostgresSessionServiceOptions extends SessionServiceOptions {
  database: PostgresConnectionOptions
  /** Schema holding the tables (default `care_sessions`). */
  schema?: string
  /** Role that owns the schema; migrations `SET ROLE` to it. Unset: the logged-in role owns it. */
  ownerRole?: string
  /** How often this instance looks for expired sessions (default: a quarter of the idle timeout, 100 ms..5 s). */
  sweepIntervalMs?: number
  /** How often this instance tries to write a checkpoint (default 10 s; 0 disables). */
  checkpointIntervalMs?: number
  /** Start batches allowed in flight at once (default 4). */
  writeConcurrency?: number
}

interface SessionRow {
  session_id: string
  user_id: string
  started_at: string
  last_activity_at: string
  idle_timeout_ms: string
  max_duration_ms: string
  expires_at: string
  event_count: number
  last_hash: string
  last_event_at: string
  ended_at: string | null
  end_reason: SessionEndReason | null
}

interface PriorRow {
  prior_digest: string | null
  prior_body: string | null
}

const MAX_ATTEMPTS = 20
const SWEEP_BATCH = 200

/**
 * The session lifecycle on PostgreSQL, for several instances sharing one database. Session state
 * lives in the database, never in instance memory: any instance can touch or end a session another
 * started, and a retry reaches the original answer through the unique `input_record_id`. Every
 * state change is one atomic statement guarded by constraints (one start and at most one end per
 * session, one event per session position), so concurrent instances cannot double-write; losers of
 * a race re-read and answer like the embedded service would. Concurrent starts share one multi-row
 * statement. Each instance sweeps expired sessions with `FOR UPDATE SKIP LOCKED`.
 *
 * @example
 * const service = new PostgresSessionService({ policy, newId: createIdFactory(), database: { url } })
 * await service.recover() // refuses unsafe servers, migrates, ends sessions expired while down
 * const { output } = await service.start(input)
 */
export class PostgresSessionService implements SessionLifecycle {
  readonly pool: pg.Pool
  readonly names: SchemaNames
  private readonly policy: SessionPolicy
  private readonly newId: IdFactory
  private readonly clock: Clock
  private readonly timersEnabled: boolean
  private readonly logger: SessionServiceOptions['logger']
  private readonly ownerRole: string | undefined
  private readonly sweepIntervalMs: number
  private readonly checkpointIntervalMs: number
  private readonly starts: StartBatcher
  private lastNow = 0
  private sweeping: Promise<void> | undefined
  private checkpointing: Promise<void> | undefined
  private timers: NodeJS.Timeout[] = []
  private recovered = false
  private closed = false

  constructor(options: PostgresSessionServiceOptions) {
    this.policy = options.policy
    this.newId = options.newId
    this.clock = options.clock ?? { now: Date.now }
    this.timersEnabled = options.timers ?? true
    this.logger = options.logger
    this.ownerRole = options.ownerRole
    this.names = schemaNames(options.schema ?? DEFAULT_SCHEMA)
    this.sweepIntervalMs =
      options.sweepIntervalMs ?? Math.min(5000, Math.max(100, Math.floor(this.policy.idleTimeoutMs / 4)))
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? 10_000
    this.pool = createPool(options.database, this.logger)
    this.starts = new StartBatcher(this.pool, this.names, options.writeConcurrency ?? 4)
  }

  /**
   * Refuses a server without durable commits, applies migrations, ends the sessions whose limit
   * passed while no instance was sweeping, then starts this instance's timeout sweeper and
   * checkpointer. Throws `UnsafeDatabaseError` or `StoreUnavailableError`.
   */
  async recover(): Promise<void> {
    await assertDurable(this.pool)
    try {
      await migrate(this.pool, this.names, { ownerRole: this.ownerRole })
    } catch (error) {
      throw unavailable(error)
    }
    this.recovered = true
    await this.sweepExpired()
    if (this.timersEnabled && !this.closed) {
      this.timers.push(setInterval(() => void this.sweepExpired().catch(() => {}), this.sweepIntervalMs))
      if (this.checkpointIntervalMs > 0) {
        this.timers.push(setInterval(() => void this.checkpoint().catch(() => {}), this.checkpointIntervalMs))
      }
      for (const timer of this.timers) timer.unref()
    }
  }

  /** Opens a new session. A retry (same `record_id`, same body) returns the original output. */
  async start(input: SessionManagerStartInput): Promise<Outcome<SessionManagerStartOutput>> {
    this.assertUsable()
    const digest = requestDigest('start', input)
    this.assertRecordFresh(input.record_id)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.now()
      const event = startEvent(
        input,
        { recordId: this.newId(now), sessionId: this.newId(now) },
        now,
        digest,
        this.policy,
      )
      const expiry = sessionDeadline(now, now, this.policy)
      const result = await this.starts.submit({ event, digest, expiresAt: expiry.at, startedAt: now })
      if (result.kind === 'inserted') return { status: 201, output: event }
      if (result.kind === 'existing') {
        if (result.digest !== digest) {
          throw new SessionError('idempotency_conflict', undefined, { record_id: input.record_id })
        }
        return { status: 200, output: eventOfBody(result.body) as SessionManagerStartOutput }
      }
      // 'retry': the conflicting row vanished (its writer rolled back) or an id collided; go again.
    }
    throw new StoreUnavailableError('too much contention on this record_id', 'PG_CONTENTION')
  }

  /** Ends a session explicitly. 404 for an unknown session or one of another user; 409 if already ended. */
  end(input: SessionManagerEndInput): Promise<Outcome<SessionManagerEndOutput>> {
    return this.mutate('end', input, (row, now, digest) =>
      explicitEndEvent(factsOf(row), input, this.newId(now), now, digest),
    )
  }

  /** Records activity on an open session, pushing back its idle timeout. */
  touch(input: SessionManagerTouchInput): Promise<Outcome<SessionManagerTouchOutput>> {
    return this.mutate('touch', input, (row, now, digest) =>
      touchEvent(factsOf(row), input, this.newId(now), now, digest),
    )
  }

  /** Status, start and end of one session, read from the database. */
  async describe(sessionId: string): Promise<SessionSummary | undefined> {
    const { rows } = await this.query<SessionRow>(
      `SELECT * FROM ${this.names.sessions} WHERE session_id = $1`,
      [sessionId],
    )
    const row = rows[0]
    if (!row) return undefined
    const summary: SessionSummary = {
      session_id: row.session_id,
      user_id: row.user_id,
      status: row.ended_at === null ? 'open' : 'ended',
      started_at: iso(Number(row.started_at)),
      last_activity_at: iso(Number(row.last_activity_at)),
      event_count: row.event_count,
    }
    if (row.ended_at !== null) {
      summary.ended_at = iso(Number(row.ended_at))
      summary.end_reason = row.end_reason ?? undefined
    } else {
      summary.expires_at = iso(Number(row.expires_at))
    }
    return summary
  }

  /** One page of a session's events in session order; `cursor` is the index of the first event. */
  async timeline(
    sessionId: string,
    page: { cursor?: number; limit?: number } = {},
  ): Promise<TimelinePage | undefined> {
    const from = Math.max(0, page.cursor ?? 0)
    const limit = Math.max(1, page.limit ?? 1000)
    const { rows } = await this.query<{
      event_count: number
      seq: string | null
      body: string
      hash: string
    }>(
      `SELECT s.event_count, e.seq, e.body, e.hash
         FROM ${this.names.sessions} s
         LEFT JOIN ${this.names.events} e
           ON e.session_id = s.session_id AND e.session_seq > $2 AND e.session_seq <= $3
        WHERE s.session_id = $1
        ORDER BY e.session_seq`,
      [sessionId, from, from + limit],
    )
    const first = rows[0]
    if (!first) return undefined
    const events = rows
      .filter((r) => r.seq !== null)
      .map((r) => storedEventOf(r as { seq: string; body: string; hash: string }))
    return from + limit < first.event_count ? { events, nextCursor: from + limit } : { events }
  }

  /** Number of open sessions across all instances. */
  async openSessions(): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.names.sessions} WHERE ended_at IS NULL`,
    )
    return Number(rows[0]!.n)
  }

  /**
   * Ends every open session whose idle or maximum-duration limit has passed, in batches, locking
   * the rows with `FOR UPDATE SKIP LOCKED` so instances sweeping at once split the work; the
   * one-end-per-session index makes a double end impossible anyway.
   */
  sweepExpired(): Promise<void> {
    if (!this.recovered) return Promise.resolve()
    this.sweeping ??= this.runSweep()
      .catch((error: unknown) => {
        this.logger?.error({ err: error }, 'could not record timeout ends; will retry')
        throw unavailable(error)
      })
      .finally(() => {
        this.sweeping = undefined
      })
    return this.sweeping
  }

  /**
   * Appends the next checkpoint over the events committed since the last one (see
   * docs/operations.md). Safe to call from every instance; one wins, the others skip.
   */
  checkpoint(): Promise<void> {
    this.checkpointing ??= writeCheckpoint(this.pool, this.names)
      .then(() => undefined)
      .catch((error: unknown) => {
        this.logger?.warn({ err: error }, 'checkpoint failed; will retry')
        throw unavailable(error)
      })
      .finally(() => {
        this.checkpointing = undefined
      })
    return this.checkpointing
  }

  /** Stops the timers, waits for work in progress and closes the pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const timer of this.timers) clearInterval(timer)
    this.timers = []
    await Promise.allSettled([this.sweeping, this.checkpointing, this.starts.drain()])
    await this.pool.end().catch(() => {})
  }

  /**
   * Runs an end or touch: reads the session and any earlier answer to this `record_id`, then writes
   * the event and the session row in one statement that only succeeds if nobody wrote to the
   * session since the read (optimistic concurrency on `event_count`). A lost race re-reads.
   */
  private async mutate<O extends SessionManagerEndOutput | SessionManagerTouchOutput>(
    kind: RequestKind,
    input: SessionManagerEndInput | SessionManagerTouchInput,
    build: (row: SessionRow, now: number, digest: string) => O,
  ): Promise<Outcome<O>> {
    this.assertUsable()
    const digest = requestDigest(kind, input)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { rows } = await this.query<Partial<SessionRow> & PriorRow>(
        `SELECT s.*, e.input_digest AS prior_digest, e.body AS prior_body
           FROM (SELECT $1::text AS session_id, $2::text AS input_record_id) q
           LEFT JOIN ${this.names.sessions} s ON s.session_id = q.session_id
           LEFT JOIN ${this.names.events} e ON e.input_record_id = q.input_record_id`,
        [input.session_id, input.record_id],
        'care-read-session',
      )
      const found = rows[0]!
      if (found.prior_body !== null) {
        if (found.prior_digest !== digest) {
          throw new SessionError('idempotency_conflict', undefined, { record_id: input.record_id })
        }
        return { status: 200, output: eventOfBody(found.prior_body) as O }
      }
      if (attempt === 0) this.assertRecordFresh(input.record_id)
      if (!found.session_id || found.user_id !== input.user_id) throw new SessionError('session_not_found')
      const row = found as SessionRow
      const now = Math.max(this.now(), Number(row.last_event_at))
      if (row.ended_at !== null) throw sessionEndedError(row.end_reason!, Number(row.ended_at))
      const due = deadlineOf(row)
      if (due.at <= now) {
        // The limit passed before anyone noticed: record the timeout (once), then refuse like the embedded service.
        const timeout = timeoutEndEvent(factsOf(row), this.newId(now), now, due)
        if (await this.writeSessionEvent(row, timeout, { endedAt: due.at, reason: due.reason })) {
          throw sessionEndedError(due.reason, due.at)
        }
        continue
      }
      const event = build(row, now, digest)
      const change =
        event.event === 'session.end'
          ? { endedAt: now, reason: 'explicit' as const }
          : { lastActivityAt: now, expiresAt: deadlineOf({ ...row, last_activity_at: String(now) }).at }
      if (await this.writeSessionEvent(row, event, change)) {
        return { status: 200, output: event }
      }
    }
    throw new StoreUnavailableError('too much contention on this session', 'PG_CONTENTION')
  }

  /** One atomic statement: advance the session row if unchanged since `row` was read, and append the event. */
  private async writeSessionEvent(
    row: SessionRow,
    event: SessionLifecycleEvent,
    change: { endedAt?: number; reason?: SessionEndReason; lastActivityAt?: number; expiresAt?: number },
  ): Promise<boolean> {
    const { body, hash } = chainEvent(event, row.last_hash)
    const eventTime = Date.parse(event.timestamp)
    try {
      const { rowCount } = await this.query(
        `WITH advanced AS (
           UPDATE ${this.names.sessions}
              SET event_count = event_count + 1, last_hash = $3, last_event_at = $4,
                  last_activity_at = coalesce($5, last_activity_at), expires_at = coalesce($6, expires_at),
                  ended_at = $7, end_reason = $8
            WHERE session_id = $1 AND event_count = $2 AND ended_at IS NULL
        RETURNING session_id, event_count)
         INSERT INTO ${this.names.events}
                (session_id, session_seq, event, record_id, input_record_id, input_digest, event_time, body, prev_hash, hash)
         SELECT session_id, event_count, $9, $10, $11, $12, $13::timestamptz, $14, $15, $3 FROM advanced`,
        [
          row.session_id,
          row.event_count,
          hash,
          eventTime,
          change.lastActivityAt ?? null,
          change.expiresAt ?? null,
          change.endedAt ?? null,
          change.reason ?? null,
          event.event,
          event.record_id,
          'input_record_id' in event ? (event.input_record_id ?? null) : null,
          'input_digest' in event ? (event.input_digest ?? null) : null,
          event.timestamp,
          body,
          row.last_hash,
        ],
        'care-write-session-event',
      )
      return rowCount === 1
    } catch (error) {
      const cause = (error as Error).cause
      if (isUniqueViolation(cause)) return false // someone else wrote this session or this record_id first
      throw error
    }
  }

  private async runSweep(): Promise<void> {
    for (;;) {
      const now = this.now()
      const ended = await withClient(this.pool, async (client) => {
        try {
          await client.query('BEGIN')
          const { rows } = await client.query<SessionRow>(
            `SELECT * FROM ${this.names.sessions}
            WHERE ended_at IS NULL AND expires_at <= $1
            ORDER BY expires_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED`,
            [now],
          )
          if (rows.length > 0) {
            const ends = rows.map((row) => {
              const at = Math.max(now, Number(row.last_event_at))
              const due = deadlineOf(row)
              const event = timeoutEndEvent(factsOf(row), this.newId(at), at, due)
              return { row, event, due, at, ...chainEvent(event, row.last_hash) }
            })
            await client.query(
              `WITH ends AS (
               SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
                                    $8::bigint[], $9::bigint[], $10::text[])
                 AS u(session_id, session_seq, record_id, event_time, body, prev_hash, hash, event_at, ended_at, reason)
             ), inserted AS (
               INSERT INTO ${this.names.events}
                      (session_id, session_seq, event, record_id, event_time, body, prev_hash, hash)
               SELECT session_id, session_seq, 'session.end', record_id, event_time, body, prev_hash, hash FROM ends
               RETURNING session_id)
             UPDATE ${this.names.sessions} s
                SET event_count = s.event_count + 1, last_hash = ends.hash, last_event_at = ends.event_at,
                    ended_at = ends.ended_at, end_reason = ends.reason
               FROM ends WHERE s.session_id = ends.session_id`,
              [
                ends.map((e) => e.row.session_id),
                ends.map((e) => e.row.event_count + 1),
                ends.map((e) => e.event.record_id),
                ends.map((e) => e.event.timestamp),
                ends.map((e) => e.body),
                ends.map((e) => e.row.last_hash),
                ends.map((e) => e.hash),
                ends.map((e) => e.at),
                ends.map((e) => e.due.at),
                ends.map((e) => e.due.reason),
              ],
            )
          }
          await client.query('COMMIT')
          return rows.length
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          throw error
        }
      })
      if (ended < SWEEP_BATCH || this.closed) return
    }
  }

  /** Runs a statement; `name` makes it a prepared statement (parsed and planned once per connection). */
  private async query<R extends pg.QueryResultRow>(
    text: string,
    values?: unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(
        name ? { name: `${name}:${this.names.raw}`, text, values } : { text, values },
      )
    } catch (error) {
      throw unavailable(error)
    }
  }

  private assertUsable(): void {
    if (this.closed) throw new StoreUnavailableError('the service is shutting down', 'SHUTTING_DOWN')
    if (!this.recovered) throw new Error('the session service was used before recover()')
  }

  private assertRecordFresh(recordId: string): void {
    checkRecordIdTime(recordId, this.now(), this.policy.retryWindowMs)
  }

  /** Wall-clock time that never goes backwards within this instance. */
  private now(): number {
    this.lastNow = Math.max(this.lastNow, this.clock.now())
    return this.lastNow
  }
}

function deadlineOf(row: SessionRow): { at: number; reason: SessionEndReason } {
  return sessionDeadline(Number(row.started_at), Number(row.last_activity_at), {
    idleTimeoutMs: Number(row.idle_timeout_ms),
    maxDurationMs: Number(row.max_duration_ms),
  })
}

function factsOf(row: SessionRow): SessionFacts {
  return { sessionId: row.session_id, userId: row.user_id, startedAt: Number(row.started_at) }
}
