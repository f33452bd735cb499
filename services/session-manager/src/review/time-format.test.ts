import { describe, expect, it } from 'vitest'
import { formatDuration, formatInstant, knownZone } from './time-format.js'

describe('formatInstant', () => {
  it('shows UTC and named zones, across a daylight-saving change', () => {
    expect(formatInstant(Date.parse('2026-03-01T12:00:00.123Z'), 'UTC')).toBe('2026-03-01 12:00:00.123 UTC')
    expect(formatInstant(Date.parse('2026-03-29T00:59:59.999Z'), 'Europe/Berlin')).toBe(
      '2026-03-29 01:59:59.999 GMT+1',
    )
    expect(formatInstant(Date.parse('2026-03-29T01:00:00.000Z'), 'Europe/Berlin')).toBe(
      '2026-03-29 03:00:00.000 GMT+2',
    )
    expect(formatInstant(Date.parse('2026-03-01T12:00:00.000Z'), 'Asia/Kolkata')).toBe(
      '2026-03-01 17:30:00.000 GMT+5:30',
    )
  })

  it('refuses unknown zones and formats durations for people', () => {
    expect(knownZone('<script>')).toBe('UTC')
    expect(knownZone('Europe/Berlin')).toBe('Europe/Berlin')
    expect(formatDuration(7_503_000)).toBe('2 h 05 min 03 s')
    expect(formatDuration(4250)).toBe('4.250 s')
  })
})
