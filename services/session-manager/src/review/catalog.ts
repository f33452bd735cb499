import type { LookupOptions, StoredEvent } from '../store/event-store.js'
import { endReasonKey, START_KEY, sessionKey, userKey } from '../store/index-keys.js'

/**
 * One row of the review search: a session as its lifecycle events tell it. Times are epoch ms; `end`,
 * `duration_ms` and `end_reason` are absent while the session is open.
 *
 * @example
 * for (const row of page.rows) console.log(row.session_id, row.open ? 'open' : row.end_reason)
 */
export interface SessionRow {
  session_id: string
  user_id: string
  start: number
  end?: number
  duration_ms?: number
  end_reason?: string
  /** `performer_id` of the start when a human started it, else its `origin` (e.g. `system`). */
  performer: string
  event_count: number
  open: boolean
}

/**
 * What to find. Filters combine (AND); `from`/`to` bound the session's start (epoch ms, `to` exclusive);
 * `cursor` is the opaque `nextCursor` of the previous page.
 *
 * @example
 * await catalog.findSessions({ userId: 'user-42', limit: 25 })
 */
export interface SessionQuery {
  userId?: string
  sessionId?: string
  from?: number
  to?: number
  endReason?: string
  cursor?: string
  limit: number
}

/**
 * One page of sessions, newest start first; `nextCursor` is set when older sessions may follow.
 *
 * @example
 * const next = page.nextCursor ? await catalog.findSessions({ ...query, cursor: page.nextCursor }) : undefined
 */
export interface SessionPage {
  rows: SessionRow[]
  nextCursor?: string
}

/**
 * The read port of the review page: finds sessions and reads one session's lifecycle events. Each store
 * has an adapter (PostgreSQL: SQL over the sessions projection; embedded: the log's on-disk index).
 *
 * @example
 * const page = await catalog.findSessions({ endReason: 'idle_timeout', limit: 25 })
 * const events = await catalog.sessionEvents(page.rows[0].session_id)
 */
export interface ReviewCatalog {
  findSessions(query: SessionQuery): Promise<SessionPage>
  /** The session's lifecycle events in log order, each checked (see `integrity`); empty when unknown. */
  sessionEvents(sessionId: string): Promise<StoredEvent[]>
  /** What reading a session's events checked, in one sentence for the page. */
  readonly integrity: string
}

/**
 * The lookup half of the embedded store that the review reads through (the contract of issue #12):
 * positions under a key, and the events at positions (every line re-hashed).
 *
 * @example
 * const catalog = new LookupReviewCatalog(fileEventStore)
 */
export interface SessionLookup<Ref> {
  lookup(key: string, options?: LookupOptions): AsyncIterable<Ref>
  read(refs: readonly Ref[]): Promise<StoredEvent[]>
}

/**
 * Summarises a session from its lifecycle events (log order) as a search row; undefined without its start.
 *
 * @example
 * const row = rowOfEvents(await catalog.sessionEvents(id)) // { session_id, user_id, start, open, ... }
 */
export function rowOfEvents(events: readonly StoredEvent[]): SessionRow | undefined {
  const start = events.find((e) => e.event === 'session.start') as
    | (StoredEvent & { user_id: string; origin?: string; performer_id?: string })
    | undefined
  if (!start) return undefined
  const end = events.find((e) => e.event === 'session.end') as (StoredEvent & { reason?: string }) | undefined
  const startMs = Date.parse(start.timestamp)
  const row: SessionRow = {
    session_id: start.session_id,
    user_id: start.user_id,
    start: startMs,
    performer: start.performer_id ?? start.origin ?? 'unknown',
    event_count: events.length,
    open: end === undefined,
  }
  if (end) {
    row.end = Date.parse(end.timestamp)
    row.duration_ms = row.end - startMs
    if (end.reason !== undefined) row.end_reason = end.reason
  }
  return row
}

/**
 * The review catalog of the embedded store, over its on-disk index: a query walks one key newest first
 * (`u:<user_id>` for a user, `e:<reason>` for an end reason, else `start` bounded by the date range), and
 * each candidate session is read through `s:<session_id>`. Memory is one page of rows; the cursor is the
 * position of the last candidate returned, so new sessions arriving meanwhile do not shift the pages.
 *
 * @example
 * const catalog = new LookupReviewCatalog(store)
 * const { rows } = await catalog.findSessions({ userId: 'user-42', limit: 25 })
 */
export class LookupReviewCatalog<Ref> implements ReviewCatalog {
  readonly integrity = 'each lifecycle line was re-hashed and compared with its recorded hash when read'

  constructor(private readonly store: SessionLookup<Ref>) {}

  async sessionEvents(sessionId: string): Promise<StoredEvent[]> {
    const refs: Ref[] = []
    for await (const ref of this.store.lookup(sessionKey(sessionId))) refs.push(ref)
    return refs.length === 0 ? [] : this.store.read(refs)
  }

  async findSessions(query: SessionQuery): Promise<SessionPage> {
    if (query.sessionId !== undefined) {
      const row = rowOfEvents(await this.sessionEvents(query.sessionId))
      return { rows: row && matches(row, query) ? [row] : [] }
    }
    const key =
      query.userId !== undefined
        ? userKey(query.userId)
        : query.endReason !== undefined
          ? endReasonKey(query.endReason)
          : START_KEY
    const bounds = key === START_KEY ? timeBounds(query) : {}
    const rows: SessionRow[] = []
    let skipping = query.cursor !== undefined
    let lastReturned = ''
    for await (const ref of this.store.lookup(key, { newestFirst: true, ...bounds })) {
      const here = Buffer.from(JSON.stringify(ref)).toString('base64url')
      if (skipping) {
        if (here === query.cursor) skipping = false
        continue
      }
      const [event] = await this.store.read([ref])
      if (!event) continue
      const row = rowOfEvents(await this.sessionEvents(event.session_id))
      if (!row || !matches(row, query)) continue
      // One more match than the page holds: older sessions follow, from after the last one returned.
      if (rows.length === query.limit) return { rows, nextCursor: lastReturned }
      rows.push(row)
      lastReturned = here
    }
    return { rows }
  }
}

function timeBounds(query: SessionQuery): { notBefore?: number; notAfter?: number } {
  return {
    ...(query.from !== undefined ? { notBefore: query.from } : {}),
    ...(query.to !== undefined ? { notAfter: query.to - 1 } : {}),
  }
}

/**
 * Whether a row passes every filter of the query (the lookup key already applied one of them).
 *
 * @example
 * matches(row, { userId: 'user-42', limit: 25 }) // false for another user's session
 */
export function matches(row: SessionRow, query: SessionQuery): boolean {
  if (query.userId !== undefined && row.user_id !== query.userId) return false
  if (query.sessionId !== undefined && row.session_id !== query.sessionId) return false
  if (query.endReason !== undefined && row.end_reason !== query.endReason) return false
  if (query.from !== undefined && row.start < query.from) return false
  if (query.to !== undefined && row.start >= query.to) return false
  return true
}
