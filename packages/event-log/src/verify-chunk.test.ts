import { describe, expect, it } from 'vitest'
import { encodeRecord, GENESIS_HASH } from './chain.js'
import { checkChunk } from './verify-chunk.js'

/** A chunk of `count` chained lines: a start, then touches and an end of the same session, alternating keys. */
function chunkOf(count: number): Buffer {
  const lines: Buffer[] = []
  let prev = GENESIS_HASH
  for (let i = 0; i < count; i++) {
    const kind = i < 2 ? 'open' : i >= count - 2 ? 'close' : 'touch'
    const { record, line } = encodeRecord(
      { kind, key: `k${i % 2}`, at: `2026-01-01T00:00:0${i % 10}.000Z` },
      i + 1,
      prev,
    )
    prev = record.hash
    lines.push(line)
  }
  return Buffer.concat(lines)
}

const RULES = {
  kindField: 'kind',
  pairing: { keyField: 'key', open: 'open', close: 'close' },
} as const

describe('checkChunk', () => {
  it('returns no per-line arrays when there are no rules to fill them (a worker copies its result back)', () => {
    const buf = chunkOf(8)
    const result = checkChunk(buf, buf.length, { seed: 1 })
    expect(result.problem).toBeNull()
    expect(result.checked).toBe(8)
    expect(result.kinds).toHaveLength(0)
    expect(result.sessionMarks).toHaveLength(0)
    expect(result.sessionKeys).toHaveLength(0)
    expect(result.sessionIdEnds).toHaveLength(0)
    expect(result.sessionIdBytes).toHaveLength(0)
  })

  it('returns the per-line arrays trimmed to the lines and keys it checked', () => {
    const buf = chunkOf(8)
    const result = checkChunk(buf, buf.length, { seed: 1, rules: RULES })
    expect(result.problem).toBeNull()
    expect(result.kinds).toHaveLength(8)
    expect(result.kindNames).toEqual(['open', 'touch', 'close'])
    expect(result.kindCounts).toEqual([2, 4, 2])
    expect([...result.kinds]).toEqual([0, 0, 1, 1, 1, 1, 2, 2])
    // Two opens and two closes: marks are line * 2 (+1 for a close).
    expect(result.sessions).toBe(4)
    expect([...result.sessionMarks]).toEqual([0, 2, 13, 15])
    expect(result.sessionKeys).toHaveLength(8)
    expect([...result.sessionIdEnds]).toEqual([2, 4, 6, 8])
    expect(Buffer.from(result.sessionIdBytes).toString('latin1')).toBe('k0k1k0k1')
  })

  it('counts the kinds only of the lines before a problem', () => {
    const buf = chunkOf(8)
    // Break line 4's hash: flip a character inside its content.
    let start = 0
    for (let i = 0; i < 4; i++) start = buf.indexOf(0x0a, start) + 1
    const at = buf.indexOf('touch', start)
    buf.write('tauch', at)
    const result = checkChunk(buf, buf.length, { seed: 1, rules: RULES })
    expect(result.problem).toEqual({ index: 4, stage: 1, reason: 'hash does not match the line content' })
    expect(result.checked).toBe(4)
    expect([...result.kinds]).toEqual([0, 0, 1, 1])
    expect(result.sessions).toBe(2)
    expect(result.sessionMarks).toHaveLength(2)
  })
})
