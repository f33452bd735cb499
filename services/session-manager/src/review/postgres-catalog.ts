import type pg from 'pg'
import { GENESIS_HASH, sha256Hex, storedEventOf } from '../postgres/event-chain.js'
import { unavailable } from '../postgres/pg-errors.js'
import type { SchemaNames } from '../postgres/schema-names.js'
import type { StoredEvent } from '../store/event-store.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { LOG_INTEGRITY } from '../store/file-event-store.js'
import type { ReviewCatalog, SessionPage, SessionQuery, SessionRow } from './catalog.js'

interface CatalogRow {
  session_id: string
  user_id: string
  started_at: string
  ended_at: string | null
  end_reason: string | null
  event_count: number
  body: string
}

/**
 * The review catalog of the PostgreSQL store: one indexed query over the sessions projection (joined with
 * each session's start event for its performer), newest start first, keyset-paged on (started_at,
 * session_id); a session's events come from the events table with their per-session hash chain checked.
 *
 * @example
 * const catalog = new PostgresReviewCatalog(pool, schemaNames('care_sessions'))
 * const { rows } = await catalog.findSessions({ userId: 'user-42', limit: 25 })
 */
export class PostgresReviewCatalog implements ReviewCatalog {
  readonly integrity =
    "each lifecycle row was re-hashed and its prev_hash compared with the session's previous row"

  constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
  ) {}

  async findSessions(query: SessionQuery): Promise<SessionPage> {
    const where: string[] = []
    const params: unknown[] = []
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value)
      where.push(sql(`$${params.length}`))
    }
    if (query.userId !== undefined) add((n) => `s.user_id = ${n}`, query.userId)
    if (query.sessionId !== undefined) add((n) => `s.session_id = ${n}`, query.sessionId)
    if (query.endReason !== undefined) add((n) => `s.end_reason = ${n}`, query.endReason)
    if (query.from !== undefined) add((n) => `s.started_at >= ${n}`, query.from)
    if (query.to !== undefined) add((n) => `s.started_at < ${n}`, query.to)
    const cursor = parseCursor(query.cursor)
    if (cursor) {
      params.push(cursor.start, cursor.id)
      where.push(`(s.started_at, s.session_id) < ($${params.length - 1}, $${params.length})`)
    }
    params.push(query.limit + 1)
    const { rows } = await this.pool
      .query<CatalogRow>(
        `SELECT s.session_id, s.user_id, s.started_at, s.ended_at, s.end_reason, s.event_count, e.body
           FROM ${this.names.sessions} s
           JOIN ${this.names.events} e ON e.session_id = s.session_id AND e.session_seq = 1
          ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY s.started_at DESC, s.session_id DESC
          LIMIT $${params.length}`,
        params,
      )
      .catch((error: unknown) => {
        throw unavailable(error)
      })
    const page = rows.slice(0, query.limit).map(rowOf)
    const last = page.at(-1)
    return rows.length > query.limit && last
      ? { rows: page, nextCursor: `${last.start}.${last.session_id}` }
      : { rows: page }
  }

  async sessionEvents(sessionId: string): Promise<StoredEvent[]> {
    const { rows } = await this.pool
      .query<{ seq: string; body: string; hash: string; session_seq: number }>(
        `SELECT seq, body, hash, session_seq FROM ${this.names.events} WHERE session_id = $1 ORDER BY session_seq`,
        [sessionId],
      )
      .catch((error: unknown) => {
        throw unavailable(error)
      })
    let prev = GENESIS_HASH
    return rows.map((row) => {
      const event = storedEventOf(row)
      const reason =
        sha256Hex(row.body) !== row.hash
          ? 'the row does not match its hash'
          : event.prev_hash !== prev
            ? "prev_hash does not match the session's previous row"
            : undefined
      if (reason) {
        throw new StoreUnavailableError(
          `event table is damaged at seq ${row.seq} (session_seq ${row.session_seq}): ${reason}`,
          LOG_INTEGRITY,
        )
      }
      prev = row.hash
      return event
    })
  }
}

function rowOf(row: CatalogRow): SessionRow {
  const start = JSON.parse(row.body) as { origin?: string; performer_id?: string }
  const result: SessionRow = {
    session_id: row.session_id,
    user_id: row.user_id,
    start: Number(row.started_at),
    performer: start.performer_id ?? start.origin ?? 'unknown',
    event_count: row.event_count,
    open: row.ended_at === null,
  }
  if (row.ended_at !== null) {
    result.end = Number(row.ended_at)
    result.duration_ms = result.end - result.start
  }
  if (row.end_reason !== null) result.end_reason = row.end_reason
  return result
}

function parseCursor(cursor: string | undefined): { start: number; id: string } | undefined {
  const match = cursor === undefined ? null : /^(\d{1,16})\.([0-9A-Z]{26})$/.exec(cursor)
  return match ? { start: Number(match[1]), id: match[2]! } : undefined
}
