import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeFileSystem } from './file-system.js'
import { MemoryIndex, SidecarIndex, sortedByUtf8Bytes } from './segment-index.js'
import type { Segment } from './segments.js'
import { loopTurnsDuring } from './testing/event-loop.js'
import { tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const segment: Segment = { name: 'events-000001.jsonl', index: 1, path: '' }
const LINE = 100

/** An index of `records` records, each under its own key, a session key shared by three, and `all`. */
function indexOf(records: number, keyOf = (i: number) => `r:${i}`): MemoryIndex {
  const index = new MemoryIndex()
  for (let i = 0; i < records; i++) add(index, i, keyOf)
  return index
}

function add(index: MemoryIndex, i: number, keyOf = (n: number) => `r:${n}`): void {
  index.add([keyOf(i), `s:${Math.floor(i / 3)}`, 'all'], { offset: i * LINE, length: LINE - 1 }, 1_000 + i)
  index.lines++
  index.lastSeq = i + 1
  index.lastHash = `${i + 1}`.padStart(64, '0')
}

const stateOf = (index: MemoryIndex) => ({
  bytes: index.lastSeq * LINE,
  lines: index.lines,
  lastSeq: index.lastSeq,
  lastHash: index.lastHash,
})

describe('sortedByUtf8Bytes', () => {
  it('orders keys as their UTF-8 bytes compare, also where that differs from UTF-16 order', () => {
    // U+FFFD is EF BF BD in UTF-8 and 0xFFFD in UTF-16; U+1F600 is F0 9F 98 80 and 0xD83D 0xDE00.
    expect(sortedByUtf8Bytes(['\u{1F600}', '\uFFFD', 'a'])).toEqual(['a', '\uFFFD', '\u{1F600}'])
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 300 }), (drawn) => {
        const keys = [...new Set(drawn)]
        const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        expect(sortedByUtf8Bytes([...keys])).toEqual(expected)
      }),
    )
  })

  it('merges more keys than one sort chunk holds into one order', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `k:${(i * 7919) % 20_000}`)
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect(sortedByUtf8Bytes([...keys])).toEqual(expected)
    const astral = [...keys.slice(0, 9_000), '\u{1F600}', '\uFFFD']
    expect(sortedByUtf8Bytes([...astral]).slice(-2)).toEqual(['\uFFFD', '\u{1F600}'])
  })
})

describe('MemoryIndex encoding', () => {
  it('encodes in slices exactly the bytes it encodes at once, across step and chunk boundaries', async () => {
    for (const records of [0, 1, 2_047, 2_048, 9_000]) {
      const index = indexOf(records)
      const state = stateOf(index)
      expect(await index.encodeInSlices(segment, state, 0)).toEqual(index.encode(segment, state))
    }
  })

  it('writes a sidecar that finds every key at its lines, in byte order with non-ASCII keys', async () => {
    const keyOf = (i: number) => (i % 5 === 0 ? `r:\u{1F600}${i}` : i % 5 === 1 ? `r:\uFFFD${i}` : `r:${i}`)
    const index = indexOf(700, keyOf)
    const state = stateOf(index)
    const path = join(await dirs.make(), 'events-000001.idx')
    await writeFile(path, await index.encodeInSlices(segment, state, 0))
    const sidecar = await SidecarIndex.load(nodeFileSystem, path, segment, state)
    try {
      for (const i of [0, 1, 2, 355, 699]) {
        expect(await sidecar.find(nodeFileSystem, keyOf(i))).toEqual([{ offset: i * LINE, length: LINE - 1 }])
      }
      expect(await sidecar.find(nodeFileSystem, 's:233')).toEqual(
        [699].map((i) => ({ offset: i * LINE, length: LINE - 1 })),
      )
      expect((await sidecar.find(nodeFileSystem, 'all')).length).toBe(700)
      expect(sidecar.time).toEqual({ min: 1_000, max: 1_699 })
    } finally {
      await sidecar.close()
    }
  })

  it('encodes the index as it was when called while appends go on between its slices', async () => {
    const index = indexOf(6_000)
    const state = stateOf(index)
    const expected = indexOf(6_000).encode(segment, state)
    let next = 6_000
    let appending = true
    const appendBetweenSlices = () => {
      if (!appending) return
      // New postings under existing keys ('all', the current session) and new keys, later times.
      add(index, next++)
      add(index, next++)
      setImmediate(appendBetweenSlices)
    }
    setImmediate(appendBetweenSlices)
    const encoded = await index.encodeInSlices(segment, state, 0)
    appending = false
    expect(next).toBeGreaterThan(6_000)
    expect(encoded).toEqual(expected)
  })

  it('leaves the event loop free between slices', async () => {
    const index = indexOf(20_000)
    const turns = await loopTurnsDuring(() => index.encodeInSlices(segment, stateOf(index), 0))
    // At least one turn per sort chunk and per step of keys.
    expect(turns).toBeGreaterThan(10)
  })
})
