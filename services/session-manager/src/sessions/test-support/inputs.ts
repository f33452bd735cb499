import type { SessionManagerEndInput, SessionManagerStartInput } from '@care/schemas'
import { ulid } from 'ulid'
import type { SessionPolicy } from '../session-lifecycle.js'

export const MINUTE = 60_000

/** The policy the lifecycle tests run under: 30 min idle, 24 h maximum and retry window. */
export const TEST_POLICY: SessionPolicy = {
  idleTimeoutMs: 30 * MINUTE,
  maxDurationMs: 24 * 60 * MINUTE,
  retryWindowMs: 24 * 60 * MINUTE,
}

/** A valid human-originated start request stamped at `now` (a test clock's time), with overrides. */
export function startInputAt(
  now: number,
  overrides: Partial<SessionManagerStartInput> = {},
): SessionManagerStartInput {
  return {
    schema_version: '1.1',
    record_id: ulid(now),
    user_id: 'user-1',
    timestamp: new Date(now).toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...overrides,
  }
}

/** The same for end (and touch, which has the same shape) of `sessionId`. */
export function endInputAt(
  now: number,
  sessionId: string,
  overrides: Partial<SessionManagerEndInput> = {},
): SessionManagerEndInput {
  return { ...startInputAt(now), session_id: sessionId, ...overrides } as SessionManagerEndInput
}
