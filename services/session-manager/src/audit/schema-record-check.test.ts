import type { ChainedRecord } from '@care/event-log'
import { describe, expect, it } from 'vitest'
import { checkRecord } from './schema-record-check.js'
import { lifecycleEvent } from './test-support/audit-fixtures.js'

const chained = (event: Record<string, unknown>): ChainedRecord =>
  ({ ...event, seq: 1, prev_hash: '0'.repeat(64), hash: 'f'.repeat(64) }) as ChainedRecord

describe('checkRecord (schema half of verify)', () => {
  it('accepts every kind of valid lifecycle event with its chain fields', () => {
    for (const kind of ['session.start', 'session.touch', 'session.end'] as const) {
      expect(checkRecord(chained(lifecycleEvent(kind, { session: 1, atSeconds: 1 })))).toBeUndefined()
    }
    expect(
      checkRecord(
        chained(lifecycleEvent('session.end', { session: 1, atSeconds: 1, reason: 'idle_timeout' })),
      ),
    ).toBeUndefined()
  })

  it('names the offending field of an invalid event', () => {
    const event = lifecycleEvent('session.start', { session: 1, atSeconds: 1 })
    event.timestamp = '2026-02-30T12:00:00.000Z'
    expect(checkRecord(chained(event))).toMatch(/^schema: .*timestamp/)
    const unknownKind = lifecycleEvent('session.touch', { session: 1, atSeconds: 1 })
    unknownKind.event = 'session.pause'
    expect(checkRecord(chained(unknownKind))).toMatch(/^schema: /)
  })
})
