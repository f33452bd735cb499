import type { SessionEndReason, SessionLifecycleEvent, SessionManagerStartOutput } from '@care/schemas'
import type pg from 'pg'
import { type SessionLifecycleOptions, SessionLifecycleService } from '../sessions/session-lifecycle.js'
import {
  deadlineOf,
  type EarlierAnswer,
  type SessionRepository,
  type SessionState,
  type StartInsert,
  stateAfter,
} from '../sessions/session-repository.js'
import type { StoredEvent } from '../store/event-store.js'
import { writeCheckpoint } from './checkpoints.js'
import { assertDurable, createPool, type PostgresConnectionOptions } from './database.js'
import { chainEvent, eventOfBody, storedEventOf } from './event-chain.js'
import { migrate } from './migrations.js'
import { isUniqueViolation, unavailable } from './pg-errors.js'
import { DEFAULT_SCHEMA, type SchemaNames, schemaNames } from './schema-names.js'
import { StartBatcher } from './start-batcher.js'

/** A session as the PostgreSQL adapter reads it: the lifecycle's state plus the session's chain head. */
export interface PostgresSessionRecord extends SessionState {
  /** Hash of the session's newest event; the next event chains to it. */
  readonly lastHash: string
}

/**
 * Options of {@link PostgresSessionRepository.open}.
 *
 * @example
 * await PostgresSessionRepository.open({ database: { url }, schema: 'care_sessions', ownerRole: 'care_owner' })
 */
export interface PostgresRepositoryOptions {
  database: PostgresConnectionOptions
  /** Schema holding the tables (default `care_sessions`). */
  schema?: string
  /** Role that owns the schema; migrations `SET ROLE` to it. Unset: the logged-in role owns it. */
  ownerRole?: string
  /** How often this instance tries to write a checkpoint (default 10 s; 0 disables; no timer when `timers` is false). */
  checkpointIntervalMs?: number
  /** Start batches allowed in flight at once (default `DEFAULT_START_BATCHES`, 2). */
  writeConcurrency?: number
  timers?: boolean
  logger?: { warn(o: object, m: string): void }
}

/** A sessions-table row (bigints arrive as strings). */
export interface SessionRow {
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

/** The default checkpoint interval of a running instance. */
export const CHECKPOINT_INTERVAL_MS = 10_000

/**
 * The PostgreSQL adapter of the {@link SessionRepository} port, for several instances sharing one
 * database. Session state lives in the database, never in instance memory. The port's atomic rules
 * are the database's: a `record_id` is answered once (unique `input_record_id`), an append succeeds
 * only if the session row's `event_count` is unchanged (one statement: `UPDATE … WHERE event_count
 * = $2` feeding the `INSERT`), one start and at most one end per session (unique indexes).
 * Concurrent starts share one multi-row statement ({@link StartBatcher}).
 *
 * @example
 * const repository = await PostgresSessionRepository.open({ database: { url }, ownerRole: 'care_owner' })
 * const sessions = new SessionLifecycleService(repository, { policy, newId })
 */
export class PostgresSessionRepository implements SessionRepository<PostgresSessionRecord> {
  readonly tracksExpiry = false
  private readonly starts: StartBatcher
  private checkpointing: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false

  private constructor(
    readonly pool: pg.Pool,
    readonly names: SchemaNames,
    private readonly options: PostgresRepositoryOptions,
  ) {
    this.starts = new StartBatcher(pool, names, options.writeConcurrency)
  }

  /**
   * Opens a pool, refuses a server without durable commits (`UnsafeDatabaseError`), applies
   * migrations and starts the checkpoint timer. Throws `StoreUnavailableError` if the database
   * cannot be reached (the pool is closed again).
   */
  static async open(options: PostgresRepositoryOptions): Promise<PostgresSessionRepository> {
    const pool = createPool(options.database, options.logger)
    const names = schemaNames(options.schema ?? DEFAULT_SCHEMA)
    try {
      await assertDurable(pool)
      await migrate(pool, names, { ownerRole: options.ownerRole }).catch((error: unknown) => {
        throw unavailable(error)
      })
    } catch (error) {
      await pool.end().catch(() => {})
      throw error
    }
    const repository = new PostgresSessionRepository(pool, names, options)
    const interval = options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS
    if ((options.timers ?? true) && interval > 0) {
      repository.timer = setInterval(() => void repository.checkpoint().catch(() => {}), interval)
      repository.timer.unref()
    }
    return repository
  }

  async load(
    sessionId: string,
    recordId: string,
  ): Promise<{ session?: PostgresSessionRecord; answer?: EarlierAnswer }> {
    const { rows } = await this.query<
      Partial<SessionRow> & { prior_digest: string | null; prior_body: string | null }
    >(
      `SELECT s.*, e.input_digest AS prior_digest, e.body AS prior_body
         FROM (SELECT $1::text AS session_id, $2::text AS input_record_id) q
         LEFT JOIN ${this.names.sessions} s ON s.session_id = q.session_id
         LEFT JOIN ${this.names.events} e ON e.input_record_id = q.input_record_id`,
      [sessionId, recordId],
      'care-read-session',
    )
    const found = rows[0]!
    return {
      session: found.session_id ? recordOfRow(found as SessionRow) : undefined,
      answer:
        found.prior_body === null || found.prior_body === undefined
          ? undefined
          : answerOf(found.prior_digest ?? '', found.prior_body),
    }
  }

  async loadSession(sessionId: string): Promise<PostgresSessionRecord | undefined> {
    const { rows } = await this.query<SessionRow>(
      `SELECT * FROM ${this.names.sessions} WHERE session_id = $1`,
      [sessionId],
    )
    return rows[0] ? recordOfRow(rows[0]) : undefined
  }

  async insertStart(event: SessionManagerStartOutput): Promise<StartInsert> {
    const state = stateAfter(undefined, event)
    const result = await this.starts.submit({
      event,
      digest: event.input_digest,
      expiresAt: deadlineOf(state).at,
      startedAt: state.startedAt,
    })
    if (result.kind === 'existing') return { kind: 'existing', answer: answerOf(result.digest, result.body) }
    return result
  }

  async appendIfUnchanged(event: SessionLifecycleEvent, expected: PostgresSessionRecord): Promise<boolean> {
    const next = stateAfter(expected, event)
    const { body, hash } = chainEvent(event, expected.lastHash)
    try {
      const { rowCount } = await this.query(
        `WITH advanced AS (
           UPDATE ${this.names.sessions}
              SET event_count = event_count + 1, last_hash = $3, last_event_at = $4,
                  last_activity_at = $5, expires_at = $6, ended_at = $7, end_reason = $8
            WHERE session_id = $1 AND event_count = $2 AND ended_at IS NULL
        RETURNING session_id, event_count)
         INSERT INTO ${this.names.events}
                (session_id, session_seq, event, record_id, input_record_id, input_digest, event_time, body, prev_hash, hash)
         SELECT session_id, event_count, $9, $10, $11, $12, $13::timestamptz, $14, $15, $3 FROM advanced`,
        [
          expected.sessionId,
          expected.eventCount,
          hash,
          next.lastEventAt,
          next.lastActivityAt,
          deadlineOf(next).at,
          next.end?.endedAt ?? null,
          next.end?.reason ?? null,
          event.event,
          event.record_id,
          'input_record_id' in event ? (event.input_record_id ?? null) : null,
          'input_digest' in event ? (event.input_digest ?? null) : null,
          event.timestamp,
          body,
          expected.lastHash,
        ],
        'care-write-session-event',
      )
      return rowCount === 1
    } catch (error) {
      const cause = (error as Error).cause
      if (isUniqueViolation(cause)) return false // another writer got this session position or record_id first
      throw error
    }
  }

  async claimExpired(now: number, limit: number): Promise<PostgresSessionRecord[]> {
    const { rows } = await this.query<SessionRow>(
      `SELECT * FROM ${this.names.sessions}
        WHERE ended_at IS NULL AND expires_at <= $1
        ORDER BY expires_at LIMIT $2`,
      [now, limit],
      'care-claim-expired',
    )
    return rows.map(recordOfRow)
  }

  retryExpiryAt(): void {
    // The row stays due until its end is stored; the next poll claims it again.
  }

  nextExpiryAt(): undefined {
    return undefined
  }

  async readEvents(
    sessionId: string,
    from: number,
    to: number,
  ): Promise<{ events: StoredEvent[]; total: number } | undefined> {
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
      [sessionId, from, to],
    )
    const first = rows[0]
    if (!first) return undefined
    const events = rows
      .filter((r) => r.seq !== null)
      .map((r) => storedEventOf(r as { seq: string; body: string; hash: string }))
    return { events, total: first.event_count }
  }

  async countOpen(): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.names.sessions} WHERE ended_at IS NULL`,
    )
    return Number(rows[0]!.n)
  }

  /** Each instance keeps its own clock; `nowAfter(session)` keeps one session's events in order. */
  newestEventAt(): number {
    return 0
  }

  forgetAnswersBefore(): void {
    // Answers stay in the events table (the unique `input_record_id`); nothing is held in memory.
  }

  /**
   * Appends the next checkpoint over the events committed since the last one (see
   * docs/operations.md). Safe to call from every instance; one wins, the others skip.
   */
  checkpoint(): Promise<void> {
    this.checkpointing ??= writeCheckpoint(this.pool, this.names)
      .then(() => undefined)
      .catch((error: unknown) => {
        this.options.logger?.warn({ err: error }, 'checkpoint failed; will retry')
        throw unavailable(error)
      })
      .finally(() => {
        this.checkpointing = undefined
      })
    return this.checkpointing
  }

  /** Stops the checkpoint timer, waits for writes in flight and closes the pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await Promise.allSettled([this.checkpointing, this.starts.drain()])
    await this.pool.end().catch(() => {})
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
}

/**
 * Reads a sessions-table row as the lifecycle's session state.
 *
 * @example
 * const session = recordOfRow(rows[0])
 */
export function recordOfRow(row: SessionRow): PostgresSessionRecord {
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    startedAt: Number(row.started_at),
    idleTimeoutMs: Number(row.idle_timeout_ms),
    maxDurationMs: Number(row.max_duration_ms),
    lastActivityAt: Number(row.last_activity_at),
    lastEventAt: Number(row.last_event_at),
    eventCount: row.event_count,
    lastHash: row.last_hash,
    ...(row.ended_at === null
      ? {}
      : { end: { reason: row.end_reason as SessionEndReason, endedAt: Number(row.ended_at) } }),
  }
}

function answerOf(digest: string, body: string): EarlierAnswer {
  return { digest, event: () => Promise.resolve(eventOfBody(body)) }
}

/**
 * The session lifecycle on PostgreSQL in one call: opens the repository (durability check,
 * migrations), builds the lifecycle over it and recovers it (ends sessions that expired while no
 * instance was sweeping). Closing the lifecycle closes the pool.
 *
 * @example
 * const sessions = await openPostgresSessions({ policy, newId: createIdFactory(), database: { url } })
 * const { output } = await sessions.start(input)
 */
export async function openPostgresSessions(
  options: PostgresRepositoryOptions & SessionLifecycleOptions,
): Promise<SessionLifecycleService<PostgresSessionRecord>> {
  const repository = await PostgresSessionRepository.open(options)
  const sessions = new SessionLifecycleService(repository, options)
  try {
    await sessions.recover()
  } catch (error) {
    await sessions.close().catch(() => {})
    throw error
  }
  return sessions
}
