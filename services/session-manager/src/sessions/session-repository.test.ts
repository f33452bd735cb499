import type { SessionLifecycleEvent, SessionManagerStartOutput } from '@care/schemas'
import { describe, expect, it } from 'vitest'
import { deadlineOf, type SessionState, stateAfter } from './session-repository.js'

const start = {
  event: 'session.start',
  session_id: 's-1',
  user_id: 'user-1',
  timestamp: '2026-03-01T12:00:00.000Z',
  idle_timeout_ms: 1000,
  max_duration_ms: 5000,
} as SessionManagerStartOutput
const at = (event: string, timestamp: string, extra: object = {}) =>
  ({ ...start, event, timestamp, ...extra }) as unknown as SessionLifecycleEvent

describe('the session state machine (stateAfter)', () => {
  it('counts events and keeps the newest event time even when a later event carries an older timestamp', () => {
    let state = stateAfter(undefined, start)
    state = stateAfter(state, at('session.touch', '2026-03-01T12:00:00.500Z'))
    state = stateAfter(state, at('session.touch', '2026-03-01T12:00:00.200Z'))
    expect(state.eventCount).toBe(3)
    expect(state.lastEventAt).toBe(Date.parse('2026-03-01T12:00:00.500Z'))
    expect(state.lastActivityAt).toBe(Date.parse('2026-03-01T12:00:00.200Z'))
  })

  it('refuses a second start, anything before the start, and anything after the end', () => {
    const opened = stateAfter(undefined, start)
    expect(() => stateAfter(opened, start)).toThrow('second session.start for session s-1')
    expect(() => stateAfter(undefined, at('session.touch', start.timestamp))).toThrow(
      'session.touch for unknown session s-1',
    )
    const ended = stateAfter(
      opened,
      at('session.end', start.timestamp, { reason: 'explicit', ended_at: start.timestamp }),
    )
    expect(ended.end).toEqual({ reason: 'explicit', endedAt: Date.parse(start.timestamp) })
    expect(() => stateAfter(ended, at('session.touch', start.timestamp))).toThrow(
      'session.touch after the end of session s-1',
    )
  })
})

describe('deadlineOf', () => {
  const state = (lastActivityAt: number): SessionState => ({
    sessionId: 's',
    userId: 'u',
    startedAt: 0,
    idleTimeoutMs: 1000,
    maxDurationMs: 5000,
    lastActivityAt,
    lastEventAt: lastActivityAt,
    eventCount: 1,
  })
  it('is the idle deadline while it comes first, and the maximum duration when both fall together or later', () => {
    expect(deadlineOf(state(3999))).toEqual({ at: 4999, reason: 'idle_timeout' })
    expect(deadlineOf(state(4000))).toEqual({ at: 5000, reason: 'max_duration' })
    expect(deadlineOf(state(4500))).toEqual({ at: 5000, reason: 'max_duration' })
  })
})
