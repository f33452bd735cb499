import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'
import { encodeRecord, GENESIS_HASH } from './chain.js'

/** Small deterministic generator of JSON-ish values, including what JSON drops or rewrites. */
function generator(seed: number, { dates }: { dates: boolean }) {
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  const keys = ['a', 'B', '1', 'é', '😀', 'session_id', 'x', '-2', '', 'metadata']
  const leaves = [1.5, -0, 'x\u2028"\u0085', null, true, undefined, Number.NaN, Infinity, 'ok', () => 1]
  const generate = (depth: number): unknown => {
    const r = next()
    if (depth > 3 || r < 0.3) return leaves[Math.floor(next() * leaves.length)]
    if (dates && r < 0.35) return new Date(Math.floor(next() * 2e12))
    if (r < 0.55) return Array.from({ length: Math.floor(next() * 4) }, () => generate(depth + 1))
    const out: Record<string, unknown> = {}
    for (let i = Math.floor(next() * 6); i > 0; i--)
      out[keys[Math.floor(next() * keys.length)]!] = generate(depth + 1)
    return out
  }
  return () => ({ kind: 'generated', value: generate(0), other: generate(1) })
}

describe('encodeRecord', () => {
  it('hands back exactly the record a parse of its line gives, hash last', () => {
    for (const dates of [false, true]) {
      const next = generator(dates ? 11 : 5, { dates })
      for (let i = 0; i < 400; i++) {
        const event = next()
        const { record, line } = encodeRecord(event, i + 1, GENESIS_HASH)
        const text = line.toString('utf8')
        expect(text.endsWith('\n')).toBe(true)
        const parsed = JSON.parse(text)
        expect(record).toStrictEqual(parsed)
        expect(Object.keys(record)).toEqual(Object.keys(parsed))
        expect(Object.keys(record).at(-1)).toBe('hash')
      }
    }
  })

  it('writes the canonical text of event + seq + prev_hash and hashes exactly it', () => {
    const event = { z: 1, a: { d: [undefined, -0], c: 'line\u2028sep' }, u: undefined }
    const { record, line } = encodeRecord(event, 7, GENESIS_HASH)
    const canonical = canonicalJson(
      { ...event, seq: 7, prev_hash: GENESIS_HASH },
      { escapeLineSeparators: true },
    )
    const hash = createHash('sha256').update(canonical).digest('hex')
    expect(line.toString('utf8')).toBe(`${canonical.slice(0, -1)},"hash":"${hash}"}\n`)
    expect(canonical).toContain('"c":"line\\u2028sep"')
    expect(record.hash).toBe(hash)
    expect(record).toStrictEqual({
      a: { c: 'line\u2028sep', d: [null, 0] },
      prev_hash: GENESIS_HASH,
      seq: 7,
      z: 1,
      hash,
    })
  })

  it('returns a record that shares nothing with the event it was given', () => {
    const event = { metadata: { tags: ['a'] }, n: 1 }
    const { record } = encodeRecord(event, 1, GENESIS_HASH)
    event.metadata.tags.push('b')
    event.n = 2
    expect(record).toMatchObject({ metadata: { tags: ['a'] }, n: 1 })
  })

  it('puts the chain fields given over any the event already has (tools writing a log in bulk)', () => {
    const { record } = encodeRecord({ seq: 99, prev_hash: 'x', k: true }, 2, GENESIS_HASH)
    expect(record).toMatchObject({ seq: 2, prev_hash: GENESIS_HASH, k: true })
  })
})
