import { describe, expect, it } from 'vitest'
import { CLOSED, decodeId, hashId, IdWriter, OPENED, PairTable } from './verify-pairs.js'

function add(table: PairTable, id: string, hi: number, lo: number): number {
  const writer = new IdWriter(4)
  const end = writer.write(id)
  const found = table.find(hi, lo, writer.bytes, 0, end)
  if (found < 0) table.insert(found, hi, lo, writer.bytes, 0, end, OPENED)
  return found
}

describe('PairTable', () => {
  it('tells apart ids whose hashes collide, by their bytes', () => {
    const table = new PairTable(16)
    expect(add(table, 'session-a', 7, 9)).toBeLessThan(0)
    expect(add(table, 'session-b', 7, 9)).toBeLessThan(0)
    expect(add(table, 'session-a', 7, 9)).toBeGreaterThanOrEqual(0)
    expect(table.size).toBe(2)
  })

  it('keeps every id and its state while growing far past its first capacity', () => {
    const table = new PairTable(16)
    const key = new Int32Array(2)
    for (let i = 0; i < 5000; i++) {
      hashId(`id-${i}`, 42, key, 0)
      expect(add(table, `id-${i}`, key[0] as number, key[1] as number)).toBeLessThan(0)
    }
    hashId('id-1234', 42, key, 0)
    const writer = new IdWriter(16)
    const end = writer.write('id-1234')
    const slot = table.find(key[0] as number, key[1] as number, writer.bytes, 0, end)
    expect(table.stateAt(slot)).toBe(OPENED)
    table.setState(slot, CLOSED)
    expect(table.stateAt(table.find(key[0] as number, key[1] as number, writer.bytes, 0, end))).toBe(CLOSED)
    expect(table.size).toBe(5000)
  })
})

describe('IdWriter', () => {
  it('round-trips ASCII and non-ASCII ids and never encodes two strings alike', () => {
    const ids = ['01JS0000000000000000000001', 'päivää ✓', '\u00ff', '\u0100', '\ud800', '\udbff', '']
    const writer = new IdWriter(2)
    const ends = ids.map((id) => writer.write(id))
    const decoded = ids.map((_, i) => decodeId(writer.bytes, ends[i - 1] ?? 0, ends[i] as number))
    expect(decoded).toEqual(ids)
    const encodings = ids.map((_, i) =>
      Buffer.from(writer.bytes.subarray(ends[i - 1] ?? 0, ends[i] as number)).toString('hex'),
    )
    expect(new Set(encodings).size).toBe(ids.length)
  })
})
