import { readdir, readFile, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ChainedRecord } from './chain.js'
import { EventLog, type LookupOptions, type OpenLogOptions } from './event-log.js'
import { type LogFileSystem, nodeFileSystem } from './file-system.js'
import type { LogPosition } from './recovery.js'
import { MemoryIndex, segmentTail } from './segment-index.js'
import { sampleEvent, tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

type Sample = Record<string, unknown>
const keyed: Pick<OpenLogOptions<Sample>, 'indexKeys' | 'recordTime' | 'maxFileBytes'> = {
  maxFileBytes: 2500,
  indexKeys: (r: ChainedRecord<Sample>) => [`s:${r.session_id}`, `u:${r.user_id}`, `e:${r.event}`],
  recordTime: (r: ChainedRecord<Sample>) => Date.parse(String(r.timestamp)),
}

/** 60 events: sessions 1..20 each start, touch, end; a session's events lie in different segments. */
async function writeSessions(dir: string) {
  const { log } = await EventLog.open<Sample>({ dir, ...keyed })
  const all: ChainedRecord<Sample>[] = []
  let i = 0
  for (const kind of ['session.start', 'session.touch', 'session.end'] as const) {
    for (let s = 1; s <= 20; s++) all.push((await log.append(sampleEvent(++i, kind, s))).record)
  }
  return { log, all }
}

async function collect(log: EventLog<Sample>, key: string, options?: LookupOptions): Promise<LogPosition[]> {
  const out: LogPosition[] = []
  for await (const p of log.lookup(key, options)) out.push(p)
  return out
}

const sessionId = (s: number) => sampleEvent(1, 'session.start', s).session_id as string

async function sidecars(dir: string, ext: string) {
  return (await readdir(join(dir, 'events'))).filter((n) => n.endsWith(ext)).sort()
}

describe('EventLog lookup', () => {
  it('finds a key in the active segment, in sealed segments from their sidecars, and after reopening', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    const expected = all.filter((r) => r.session_id === sessionId(3))
    const live = await collect(log, `s:${sessionId(3)}`)
    expect(new Set(live.map((p) => p.file)).size).toBeGreaterThan(1)
    expect(await log.read(live)).toEqual(expected)
    await log.close()
    expect((await sidecars(dir, '.idx')).length).toBeGreaterThan(3)
    expect((await sidecars(dir, '.digest.json')).length).toBe((await sidecars(dir, '.idx')).length)

    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed })
    const positions = await collect(again, `s:${sessionId(3)}`)
    expect(positions).toEqual(live)
    expect(await again.read(positions)).toEqual(expected)
    const newest = await collect(again, `s:${sessionId(3)}`, { newestFirst: true })
    expect(newest).toEqual([...live].reverse())
    expect(await collect(again, 'e:session.end')).toHaveLength(20)
    expect(await collect(again, 's:nobody')).toEqual([])
    await again.close()
  })

  it('skips segments outside notBefore/notAfter by their time range', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    const t = (r: ChainedRecord<Sample>) => Date.parse(String(r.timestamp))
    const notBefore = t(all[40]!)
    const ends = await log.read(await collect(log, 'e:session.end', { notBefore }))
    expect(ends.length).toBeGreaterThan(0)
    expect(ends.length).toBeLessThan(20 + 1)
    // Whole segments are skipped; every end at or after notBefore is still found.
    for (const r of all.filter((r) => r.event === 'session.end' && t(r) >= notBefore)) {
      expect(ends.map((e) => e.seq)).toContain(r.seq)
    }
    const starts = await log.read(await collect(log, 'e:session.start', { notAfter: t(all[2]!) }))
    expect(starts.length).toBeLessThan(20)
    expect(starts[0]!.seq).toBe(1)
    await log.close()
  })

  it('indexes the active segment before a resume point in the background', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    const point = log.resumePoint
    await log.close()
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, resumeAfter: point })
    const expected = all.filter((r) => r.session_id === sessionId(20))
    expect(await again.read(await collect(again, `s:${sessionId(20)}`))).toEqual(expected)
    const appended = await again.append(sampleEvent(61, 'session.touch', 20))
    expect(await again.read(await collect(again, `s:${sessionId(20)}`))).toEqual([
      ...expected,
      appended.record,
    ])
    await again.close()
  })

  it('rebuilds a missing, truncated, corrupt or past-the-segment index and answers the same', async () => {
    const dir = await dirs.make()
    const { log } = await writeSessions(dir)
    const want = await collect(log, `s:${sessionId(7)}`)
    await log.close()
    const idx = (await sidecars(dir, '.idx')).map((n) => join(dir, 'events', n))
    const [a, b, c, d] = idx
    await writeFile(a!, '')
    await truncate(b!, 40)
    const bytes = await readFile(c!)
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 3) ^ 0xff, bytes.length - 3)
    await writeFile(c!, bytes)
    // An index whose header claims a longer segment than the one beside it (and so points past it).
    const text = await readFile(d!, 'utf8')
    const header = JSON.parse(text.slice(0, text.indexOf('\n')))
    await writeFile(d!, text.replace(`"bytes":${header.bytes}`, `"bytes":${header.bytes + 5000}`))

    const warnings: string[] = []
    const logger = { info() {}, error() {}, warn: (_o: object, m: string) => warnings.push(m) }
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, logger })
    expect(await collect(again, `s:${sessionId(7)}`)).toEqual(want)
    for (let s = 1; s <= 20; s++) await collect(again, `s:${sessionId(s)}`)
    expect(warnings.filter((m) => m.includes('rebuilding a segment index')).length).toBeGreaterThanOrEqual(4)
    await again.close()
    // Rebuilt files are valid again: no rebuild on the next open.
    warnings.length = 0
    const { log: third } = await EventLog.open<Sample>({ dir, ...keyed, logger })
    expect(await collect(third, `s:${sessionId(7)}`)).toEqual(want)
    expect(warnings).toEqual([])
    await third.close()
  })

  it('rebuilds an index whose header (not covered by the body checksum) runs its counts past the body', async () => {
    const dir = await dirs.make()
    const { log } = await writeSessions(dir)
    const want = await collect(log, `s:${sessionId(7)}`)
    await log.close()
    const [a, b] = (await sidecars(dir, '.idx')).map((n) => join(dir, 'events', n))
    const rewrite = async (path: string, change: (h: Record<string, number>) => void) => {
      const text = await readFile(path, 'latin1')
      const end = text.indexOf('\n')
      const header = JSON.parse(text.slice(0, end)) as Record<string, number>
      change(header)
      await writeFile(path, Buffer.from(JSON.stringify(header) + text.slice(end), 'latin1'))
    }
    await rewrite(a!, (h) => {
      h.fence_offset = h.body_bytes! + 1000
    })
    await rewrite(b!, (h) => {
      h.fence_count = h.fence_count! + 1000
    })
    const warnings: string[] = []
    const logger = {
      info() {},
      error() {},
      warn: (o: object, m: string) => warnings.push(`${m} ${JSON.stringify(o)}`),
    }
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, logger })
    expect(await collect(again, `s:${sessionId(7)}`)).toEqual(want)
    for (let s = 1; s <= 20; s++) await collect(again, `s:${sessionId(s)}`)
    expect(warnings.join('\n')).toMatch(/fence_offset \d+ is outside/)
    expect(warnings.join('\n')).toMatch(/fence table runs past the body/)
    await again.close()
  })

  it('finds nothing without indexKeys and writes no index files', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    for (let i = 1; i <= 20; i++) await log.append(sampleEvent(i))
    expect(await collect(log as EventLog<Sample>, 'anything')).toEqual([])
    await log.close()
    expect(await sidecars(dir, '.idx')).toEqual([])
    expect((await sidecars(dir, '.digest.json')).length).toBeGreaterThan(0)
  })

  it('rebuilds an index whose checksum is right but whose positions point past its segment', async () => {
    const dir = await dirs.make()
    const { log } = await writeSessions(dir)
    const want = await collect(log, `s:${sessionId(1)}`)
    await log.close()
    const segment = {
      index: 1,
      name: 'events-000001.jsonl',
      path: join(dir, 'events', 'events-000001.jsonl'),
    }
    const tail = (await segmentTail(nodeFileSystem, segment))!
    const forged = new MemoryIndex()
    forged.add([`s:${sessionId(1)}`], { offset: tail.bytes - 10, length: 500 }, undefined)
    await writeFile(join(dir, 'events', 'events-000001.idx'), forged.encode(segment, tail))
    const warnings: string[] = []
    const logger = {
      info() {},
      error() {},
      warn: (o: object, m: string) => warnings.push(`${m} ${JSON.stringify(o)}`),
    }
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, logger })
    expect(await collect(again, `s:${sessionId(1)}`)).toEqual(want)
    expect(warnings.join('\n')).toMatch(/points past its segment/)
    await again.close()
  })

  it('builds missing indexes of sealed segments in the background after open, without a lookup', async () => {
    const dir = await dirs.make()
    const { log } = await writeSessions(dir)
    const want = await collect(log, 'e:session.end')
    await log.close()
    const built = await sidecars(dir, '.idx')
    for (const name of built) await unlink(join(dir, 'events', name))
    const { log: again } = await EventLog.open<Sample>({
      dir,
      ...keyed,
      logger: { info() {}, warn() {}, error() {} },
    })
    for (let i = 0; i < 100 && (await sidecars(dir, '.idx')).length < built.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(await sidecars(dir, '.idx')).toEqual(built)
    expect(await collect(again, 'e:session.end')).toEqual(want)
    await again.close()
  })
})

/** The real file system, counting the opens of each sidecar index file and the bytes read from it. */
function countingIndexReads() {
  const bytes = new Map<string, number>()
  const opens = new Map<string, number>()
  const fs: LogFileSystem = {
    ...nodeFileSystem,
    async open(path, mode) {
      const handle = await nodeFileSystem.open(path, mode)
      if (!path.endsWith('.idx')) return handle
      const name = path.slice(path.lastIndexOf('/') + 1)
      opens.set(name, (opens.get(name) ?? 0) + 1)
      return {
        read: async (buffer, offset, length, position) => {
          const n = await handle.read(buffer, offset, length, position)
          bytes.set(name, (bytes.get(name) ?? 0) + n)
          return n
        },
        write: (...args) => handle.write(...args),
        datasync: () => handle.datasync(),
        sync: () => handle.sync(),
        truncate: (length) => handle.truncate(length),
        size: () => handle.size(),
        close: () => handle.close(),
      }
    },
  }
  return { fs, bytes, opens }
}

describe('EventLog lookup reads little of the indexes it does not need', () => {
  it('skips segments before notBefore by their index header alone, without loading the index', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    await log.close()
    const { fs, bytes, opens } = countingIndexReads()
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, fs, indexMissing: false })
    const last = all.at(-1)!
    const found = await collect(again, `s:${last.session_id}`, {
      notBefore: Date.parse(String(last.timestamp)),
    })
    expect((await again.read(found)).map((r) => r.seq)).toContain(last.seq)
    // The last event is in the active segment: every sealed segment is skipped after one header read
    // (one open, at most 4 KiB), none is loaded (a load opens the file again and reads all of it).
    const names = await sidecars(dir, '.idx')
    expect(names.length).toBeGreaterThan(3)
    expect([...opens.keys()].sort()).toEqual(names)
    for (const name of names) {
      expect(opens.get(name)).toBe(1)
      expect(bytes.get(name)).toBeLessThanOrEqual(4096)
    }
    await again.close()
  })

  it('does not skip a segment by the time of a stale index of the same size (another last record)', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    const first = all[0]!
    await log.close()
    const segment = {
      index: 1,
      name: 'events-000001.jsonl',
      path: join(dir, 'events', 'events-000001.jsonl'),
    }
    const tail = (await segmentTail(nodeFileSystem, segment))!
    // Same format, name and size; made for another last record, with a time range long before.
    const stale = new MemoryIndex()
    stale.add([`s:${sessionId(1)}`], { offset: 0, length: 10 }, 1)
    await writeFile(
      join(dir, 'events', 'events-000001.idx'),
      stale.encode(segment, { ...tail, lastSeq: tail.lastSeq + 1, lastHash: 'f'.repeat(64) }),
    )
    const { log: again } = await EventLog.open<Sample>({
      dir,
      ...keyed,
      indexMissing: false,
      logger: { info() {}, warn() {}, error() {} },
    })
    const found = await collect(again, `s:${first.session_id}`, {
      notBefore: Date.parse(String(first.timestamp)),
    })
    expect((await again.read(found)).map((r) => r.seq)).toContain(first.seq)
    await again.close()
  })

  it('lookupBySegment loads no index after the segment where the caller stops', async () => {
    const dir = await dirs.make()
    const { log, all } = await writeSessions(dir)
    await log.close()
    const { fs, bytes } = countingIndexReads()
    const { log: again } = await EventLog.open<Sample>({ dir, ...keyed, fs, indexMissing: false })
    const first = all[0]!
    const segments: number[] = []
    for await (const { file, positions } of again.lookupBySegment(`s:${first.session_id}`)) {
      segments.push(file)
      if (positions.length > 0) break
    }
    expect(segments).toEqual([1])
    expect([...bytes.keys()]).toEqual(['events-000001.idx'])
    await again.close()
  })
})
