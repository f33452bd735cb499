import { ULID_PATTERN } from '@care/schemas'
import { describe, expect, it } from 'vitest'
import { newRecordId } from './record-id.js'

describe('newRecordId', () => {
  it('is a ULID whose time part encodes the given millisecond', () => {
    const id = newRecordId(Date.parse('2026-03-01T12:00:00.000Z'))
    expect(id).toMatch(new RegExp(ULID_PATTERN))
    const decoded = [...id.slice(0, 10)].reduce(
      (n, ch) => n * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(ch),
      0,
    )
    expect(new Date(decoded).toISOString()).toBe('2026-03-01T12:00:00.000Z')
  })

  it('differs between two calls in the same millisecond', () => {
    expect(newRecordId(0)).not.toBe(newRecordId(0))
  })
})
