import { createHash } from 'node:crypto'
import { canonicalJson } from '@care/event-log'
import {
  SCHEMA_VERSION,
  type SessionEndReason,
  type SessionManagerEndInput,
  type SessionManagerEndOutput,
  type SessionManagerStartInput,
  type SessionManagerStartOutput,
  type SessionManagerTouchInput,
  type SessionManagerTouchOutput,
} from '@care/schemas'
import { decodeTime } from 'ulid'
import { SessionError } from './session-errors.js'

// How each lifecycle event looks, how a request is fingerprinted for retries, and when a
// record_id is too old or too new. Used only by the lifecycle core (session-lifecycle.ts).

export type RequestKind = 'start' | 'end' | 'touch'

/** What an event about an existing session needs to know of it. */
export interface SessionFacts {
  sessionId: string
  userId: string
  /** Epoch ms. */
  startedAt: number
}

export interface SessionLimits {
  idleTimeoutMs: number
  maxDurationMs: number
}

/** UTC ISO 8601 with milliseconds and Z, the only timestamp form records carry. */
export function iso(ms: number): string {
  return new Date(ms).toISOString()
}

/**
 * Fingerprint of a request, stored with the event it caused: `sha256:` + hex over `kind\n` +
 * canonical JSON of the input. A retry with the same `record_id` must have the same digest.
 */
export function requestDigest(kind: RequestKind, input: object): string {
  return `sha256:${createHash('sha256').update(kind).update('\n').update(canonicalJson(input)).digest('hex')}`
}

/** How far ahead of our clock a caller's clock may be when it makes a `record_id`. */
export const RECORD_ID_CLOCK_SKEW_MS = 5 * 60_000

/**
 * A `record_id` is remembered for retries while its ULID time is within the retry window. One
 * older than that can no longer be told apart from a new request (422 `record_id_expired`); one
 * from the future would be remembered indefinitely (422 `record_id_in_future`). Returns its time.
 */
export function checkRecordIdTime(recordId: string, now: number, retryWindowMs: number): number {
  const time = decodeTime(recordId)
  if (time < now - retryWindowMs)
    throw new SessionError('record_id_expired', undefined, { record_id: recordId })
  if (time > now + RECORD_ID_CLOCK_SKEW_MS) {
    throw new SessionError('record_id_in_future', undefined, { record_id: recordId })
  }
  return time
}

/** The 409 for a request on a session that already ended, saying how and when. */
export function sessionEndedError(reason: SessionEndReason, endedAt: number): SessionError {
  return new SessionError('session_ended', `The session already ended (${reason}).`, {
    reason,
    ended_at: iso(endedAt),
  })
}

export function startEvent(
  input: SessionManagerStartInput,
  ids: { recordId: string; sessionId: string },
  now: number,
  digest: string,
  limits: SessionLimits,
): SessionManagerStartOutput {
  return {
    ...eventBase({ sessionId: ids.sessionId, userId: input.user_id }, ids.recordId, now, input),
    event: 'session.start',
    input_record_id: input.record_id,
    input_source: input.source,
    input_digest: digest,
    ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
    idle_timeout_ms: limits.idleTimeoutMs,
    max_duration_ms: limits.maxDurationMs,
  }
}

export function touchEvent(
  session: SessionFacts,
  input: SessionManagerTouchInput,
  recordId: string,
  now: number,
  digest: string,
): SessionManagerTouchOutput {
  return {
    ...eventBase(session, recordId, now, input),
    event: 'session.touch',
    input_record_id: input.record_id,
    input_source: input.source,
    input_digest: digest,
  }
}

export function explicitEndEvent(
  session: SessionFacts,
  input: SessionManagerEndInput,
  recordId: string,
  now: number,
  digest: string,
): SessionManagerEndOutput {
  return {
    ...eventBase(session, recordId, now, input),
    event: 'session.end',
    reason: 'explicit',
    started_at: iso(session.startedAt),
    ended_at: iso(now),
    input_record_id: input.record_id,
    input_source: input.source,
    input_digest: digest,
  }
}

/** A timeout end: recorded at `now`, but `ended_at` is when the limit was reached. Nobody asked for it. */
export function timeoutEndEvent(
  session: SessionFacts,
  recordId: string,
  now: number,
  deadline: { at: number; reason: SessionEndReason },
): SessionManagerEndOutput {
  return {
    ...eventBase(session, recordId, now),
    event: 'session.end',
    reason: deadline.reason,
    started_at: iso(session.startedAt),
    ended_at: iso(deadline.at),
  }
}

function eventBase(
  session: Pick<SessionFacts, 'sessionId' | 'userId'>,
  recordId: string,
  now: number,
  input?: { origin: 'human' | 'system'; performer_id?: string },
) {
  return {
    schema_version: SCHEMA_VERSION,
    record_id: recordId,
    user_id: session.userId,
    session_id: session.sessionId,
    timestamp: iso(now),
    source: 'session_manager' as const,
    origin: input?.origin ?? ('system' as const),
    ...(input?.performer_id === undefined ? {} : { performer_id: input.performer_id }),
  }
}
