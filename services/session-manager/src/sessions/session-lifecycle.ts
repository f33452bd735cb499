import type {
  SessionEndReason,
  SessionManagerEndInput,
  SessionManagerEndOutput,
  SessionManagerStartInput,
  SessionManagerStartOutput,
  SessionManagerTouchInput,
  SessionManagerTouchOutput,
} from '@care/schemas'
import type { StoredEvent } from '../store/event-store.js'

/** What the read side tells an auditor about one session. Never "the open session of user X". */
export interface SessionSummary {
  session_id: string
  user_id: string
  status: 'open' | 'ended'
  started_at: string
  last_activity_at: string
  expires_at?: string
  ended_at?: string
  end_reason?: SessionEndReason
  event_count: number
}

export interface Outcome<T> {
  /** 201 for a new session, 200 for everything else (including replayed retries). */
  status: 200 | 201
  output: T
}

export interface TimelinePage {
  events: StoredEvent[]
  /** Where the next page starts; undefined on the last page. */
  nextCursor?: number
}

/**
 * The session lifecycle as the HTTP layer sees it, whatever keeps the events (the embedded
 * JSONL log, PostgreSQL). Implementations throw `SessionError` for refusals the caller can act
 * on (404, 409, 422) and `StoreUnavailableError` when nothing could be made durable (503).
 *
 * @example
 * const { status, output } = await sessions.start(input) // 201, or 200 for a retry
 */
export interface SessionLifecycle {
  start(input: SessionManagerStartInput): Promise<Outcome<SessionManagerStartOutput>>
  end(input: SessionManagerEndInput): Promise<Outcome<SessionManagerEndOutput>>
  touch(input: SessionManagerTouchInput): Promise<Outcome<SessionManagerTouchOutput>>
  describe(sessionId: string): SessionSummary | undefined | Promise<SessionSummary | undefined>
  timeline(sessionId: string, page?: { cursor?: number; limit?: number }): Promise<TimelinePage | undefined>
  /** Number of sessions currently open (for readiness and metrics). */
  openSessions(): number | Promise<number>
  close(): Promise<void>
}
