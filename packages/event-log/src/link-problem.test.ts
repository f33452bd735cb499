import { describe, expect, it } from 'vitest'
import { linkProblem } from './verify-chunk.js'

const H = 'a'.repeat(64)
const OTHER = 'b'.repeat(64)

/** linkProblem for a record (seq 5, prev_hash H) after a line with seq 4 and hash H. */
function nextLine(timestamp: unknown, lastTimestamp: string, field: string | undefined) {
  return linkProblem(5, H, timestamp, 4, H, lastTimestamp, field)
}

/** The same with the rules' timestamp field named `timestamp`. */
function timed(timestamp: unknown, lastTimestamp: string) {
  return nextLine(timestamp, lastTimestamp, 'timestamp')
}

describe('linkProblem', () => {
  it('reports a seq that does not follow, before anything else', () => {
    expect(linkProblem(6, OTHER, undefined, 4, H, '', 'timestamp')).toBe('seq is 6, expected 5')
    expect(linkProblem(4, H, undefined, 4, H, '', undefined)).toBe('seq is 4, expected 5')
  })

  it("reports a prev_hash that is not the previous line's hash", () => {
    expect(linkProblem(5, OTHER, '2026-01-01T00:00:00.000Z', 4, H, '', 'timestamp')).toBe(
      "prev_hash does not match the previous line's hash",
    )
  })

  it('checks no timestamp when the rules name no timestamp field', () => {
    expect(nextLine(undefined, '2026-01-02T00:00:00.000Z', undefined)).toBeUndefined()
    expect(nextLine('2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', undefined)).toBeUndefined()
  })

  it('names the field when the timestamp is missing or not a string', () => {
    expect(nextLine(undefined, '', 'occurred_at')).toBe('occurred_at is missing')
    expect(nextLine(1767225600000, '', 'timestamp')).toBe('timestamp is missing')
  })

  it('compares other 24-character timestamp forms as dates, not as text', () => {
    // A space sorts before 'T' as text, but 06:00 is after 05:00.
    expect(timed('2026-01-02 06:00:00.000Z', '2026-01-02T05:00:00.000Z')).toBeUndefined()
    expect(timed('2026-01-02T06:00:00.000Z', '2026-01-02 05:00:00.000Z')).toBeUndefined()
    expect(timed('2026-01-02 04:00:00.000Z', '2026-01-02T05:00:00.000Z')).toBe(
      'timestamp 2026-01-02 04:00:00.000Z is before the previous 2026-01-02T05:00:00.000Z',
    )
    expect(timed('2026-01-0xT06:00:00.000Z', '2026-01-02T05:00:00.000Z')).toBe(
      'timestamp 2026-01-0xT06:00:00.000Z is not a date',
    )
  })

  it('accepts equal or later canonical timestamps and reports an earlier one with both values', () => {
    const t = '2026-01-02T00:00:00.000Z'
    expect(timed(t, '')).toBeUndefined()
    expect(timed(t, t)).toBeUndefined()
    expect(timed('2026-01-02T00:00:00.001Z', t)).toBeUndefined()
    expect(timed('2026-01-01T23:59:59.999Z', t)).toBe(
      'timestamp 2026-01-01T23:59:59.999Z is before the previous 2026-01-02T00:00:00.000Z',
    )
  })

  it('compares other ISO forms as dates and refuses a timestamp that is not a date', () => {
    const t = '2026-01-02T00:00:00.000Z'
    expect(timed('2026-01-02T01:00:00+01:00', t)).toBeUndefined()
    expect(timed('2026-01-02T00:59:59+01:00', t)).toBe(
      'timestamp 2026-01-02T00:59:59+01:00 is before the previous 2026-01-02T00:00:00.000Z',
    )
    expect(timed('2026-01-01T23:00:00Z', '2026-01-02T00:00:00Z')).toBe(
      'timestamp 2026-01-01T23:00:00Z is before the previous 2026-01-02T00:00:00Z',
    )
    expect(timed('yesterday', t)).toBe('timestamp yesterday is not a date')
    expect(timed('yesterday', '')).toBe('timestamp yesterday is not a date')
    expect(timed('2026-01-01T00:00:00Z', '')).toBeUndefined()
  })
})
