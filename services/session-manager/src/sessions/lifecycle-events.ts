import { createHash, hash as oneShotHash } from 'node:crypto'
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

let lastIsoMs = Number.NaN
let lastIso = ''

/** UTC ISO 8601 with milliseconds and Z, the only timestamp form records carry. */
export function iso(ms: number): string {
  // Requests answered in the same millisecond (many, under load) share the text.
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString()
    lastIsoMs = ms
  }
  return lastIso
}

const sha256Hex: (text: string) => string =
  typeof oneShotHash === 'function'
    ? (text) => oneShotHash('sha256', text, 'hex')
    : (text) => createHash('sha256').update(text).digest('hex')

/**
 * Fingerprint of a request, stored with the event it caused: `sha256:` + hex over `kind\n` +
 * canonical JSON of the input. A retry with the same `record_id` must have the same digest.
 */
export function requestDigest(kind: RequestKind, input: object): string {
  return `sha256:${sha256Hex(`${kind}\n${canonicalJson(input)}`)}`
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

// The builders below write each event as one object literal, in the order its members are
// answered (the log sorts them anyway), adding optional members in place: no spread copies.

export function startEvent(
  input: SessionManagerStartInput,
  ids: { recordId: string; sessionId: string },
  now: number,
  digest: string,
  limits: SessionLimits,
): SessionManagerStartOutput {
  const event = eventBase(ids.sessionId, input.user_id, ids.recordId, now, input) as SessionManagerStartOutput
  event.event = 'session.start'
  event.input_record_id = input.record_id
  event.input_source = input.source
  event.input_digest = digest
  if (input.metadata !== undefined) event.metadata = input.metadata
  event.idle_timeout_ms = limits.idleTimeoutMs
  event.max_duration_ms = limits.maxDurationMs
  return event
}

export function touchEvent(
  session: SessionFacts,
  input: SessionManagerTouchInput,
  recordId: string,
  now: number,
  digest: string,
): SessionManagerTouchOutput {
  const event = eventBase(
    session.sessionId,
    session.userId,
    recordId,
    now,
    input,
  ) as SessionManagerTouchOutput
  event.event = 'session.touch'
  event.input_record_id = input.record_id
  event.input_source = input.source
  event.input_digest = digest
  return event
}

export function explicitEndEvent(
  session: SessionFacts,
  input: SessionManagerEndInput,
  recordId: string,
  now: number,
  digest: string,
): SessionManagerEndOutput {
  const event = eventBase(session.sessionId, session.userId, recordId, now, input) as SessionManagerEndOutput
  event.event = 'session.end'
  event.reason = 'explicit'
  event.started_at = iso(session.startedAt)
  event.ended_at = iso(now)
  event.input_record_id = input.record_id
  event.input_source = input.source
  event.input_digest = digest
  return event
}

/** A timeout end: recorded at `now`, but `ended_at` is when the limit was reached. Nobody asked for it. */
export function timeoutEndEvent(
  session: SessionFacts,
  recordId: string,
  now: number,
  deadline: { at: number; reason: SessionEndReason },
): SessionManagerEndOutput {
  const event = eventBase(session.sessionId, session.userId, recordId, now) as SessionManagerEndOutput
  event.event = 'session.end'
  event.reason = deadline.reason
  event.started_at = iso(session.startedAt)
  event.ended_at = iso(deadline.at)
  return event
}

/** The members every event starts with; the builders above add the rest to this same object. */
function eventBase(
  sessionId: string,
  userId: string,
  recordId: string,
  now: number,
  input?: { origin: 'human' | 'system'; performer_id?: string },
): Record<string, unknown> {
  const event: Record<string, unknown> = {
    schema_version: SCHEMA_VERSION,
    record_id: recordId,
    user_id: userId,
    session_id: sessionId,
    timestamp: iso(now),
    source: 'session_manager',
    origin: input?.origin ?? 'system',
  }
  if (input?.performer_id !== undefined) event.performer_id = input.performer_id
  return event
}
