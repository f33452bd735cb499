import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GENESIS_HASH } from './chain.js'
import { StorageError } from './errors.js'
import { EventLog } from './event-log.js'
import { readLog } from './read-log.js'
import { FaultyFileSystem } from './testing/faulty-file-system.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

describe('EventLog', () => {
  it('reads positions back in any order across segments, reusing one handle per segment', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open({ dir, fs, maxFileBytes: 4096 })
    const appended = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(sampleEvent(i + 1))))
    expect(new Set(appended.map((a) => a.position.file)).size).toBeGreaterThan(2)
    const shuffled = [...appended].sort(() => Math.random() - 0.5)
    const opensBefore = fs.calls.open
    for (let round = 0; round < 3; round++) {
      const records = await log.read(shuffled.map((a) => a.position))
      expect(records).toEqual(shuffled.map((a) => a.record))
    }
    const segments = new Set(appended.map((a) => a.position.file)).size
    expect(fs.calls.open - opensBefore).toBe(segments)
    await log.close()
  })

  it('reopens a segment whose read handle failed', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open({ dir, fs })
    const { record, position } = await log.append(sampleEvent(1))
    fs.fail('read', { errno: 'EIO' })
    await expect(log.read([position])).rejects.toMatchObject({ code: 'EIO' })
    expect(await log.read([position])).toEqual([record])
    await log.close()
  })

  it('round-trips appended events through close and reopen, continuing the chain', async () => {
    const dir = await dirs.make()
    const first = await EventLog.open({ dir })
    expect(first.report.records).toBe(0)
    expect(first.log.head).toEqual({ seq: 0, hash: GENESIS_HASH })
    const a = await first.log.append(sampleEvent(1))
    const b = await first.log.append(sampleEvent(2))
    expect(a.record.seq).toBe(1)
    expect(a.record.prev_hash).toBe(GENESIS_HASH)
    expect(b.record.prev_hash).toBe(a.record.hash)
    await first.log.close()

    const seen: number[] = []
    const second = await EventLog.open({ dir, onRecord: (record) => seen.push(record.seq) })
    expect(seen).toEqual([1, 2])
    expect(second.report.head).toEqual({ seq: 2, hash: b.record.hash })
    const c = await second.log.append(sampleEvent(3))
    expect(c.record).toMatchObject({ seq: 3, prev_hash: b.record.hash })
    await second.log.close()
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 3 })
  })

  it('writes one line per event with hash as the last key', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const { record } = await log.append(sampleEvent(1))
    await log.close()
    const [line] = await linesOf(dir)
    expect(line).toMatch(/^\{"event":"session\.start",.*"seq":1,.*,"hash":"[0-9a-f]{64}"\}$/)
    expect(JSON.parse(line!)).toEqual(record)
  })

  it('rotates to a new file before a write would exceed maxFileBytes and keeps seq across files', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 1200 })
    const positions = []
    for (let i = 1; i <= 12; i++) positions.push((await log.append(sampleEvent(i))).position)
    await log.close()
    const files = await segmentFiles(dir)
    expect(files.length).toBeGreaterThan(2)
    for (const file of files) {
      const bytes = (await readFile(join(dir, 'events', file))).length
      expect(bytes).toBeLessThanOrEqual(1200)
      expect((await readFile(join(dir, 'events', file), 'utf8')).endsWith('\n')).toBe(true)
    }
    expect(new Set(positions.map((p) => p.file)).size).toBe(files.length)

    const reopened = await EventLog.open({ dir, maxFileBytes: 1200 })
    expect(reopened.report.head.seq).toBe(12)
    await reopened.log.append(sampleEvent(13))
    await reopened.log.close()
    const seqs = []
    for await (const { record } of readLog(dir)) seqs.push(record.seq)
    expect(seqs).toEqual(Array.from({ length: 13 }, (_, i) => i + 1))
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 13 })
  })

  it('reads records back by position, across files', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 1000 })
    const results = []
    for (let i = 1; i <= 8; i++) results.push(await log.append(sampleEvent(i)))
    const picked = [results[6]!, results[0]!, results[3]!]
    const records = await log.read(picked.map((r) => r.position))
    expect(records).toEqual(picked.map((r) => r.record))
    await expect(log.read([{ file: 99, offset: 0, length: 10 }])).rejects.toThrow(RangeError)
    await log.close()
  })

  it('commits 200 concurrent appends in order with far fewer fdatasyncs than appends', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open({ dir, fs })
    const before = fs.calls.fdatasync
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(sampleEvent(i + 1))))
    const syncs = fs.calls.fdatasync - before
    expect(syncs).toBeLessThanOrEqual(5)
    expect(results.map((r) => r.record.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    await log.close()
    const lines = await linesOf(dir)
    expect(lines.map((l) => JSON.parse(l).record_id)).toEqual(results.map((r) => r.record.record_id))
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 200 })
  })

  it('batches appends that arrive while a flush is in progress into one write and one fdatasync', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open({ dir, fs })
    const gate = fs.hold('fdatasync')
    const first = log.append(sampleEvent(1))
    await gate.reached
    const writesBefore = fs.calls.write
    const syncsBefore = fs.calls.fdatasync
    const later = Array.from({ length: 50 }, (_, i) => log.append(sampleEvent(i + 2)))
    gate.release()
    await Promise.all([first, ...later])
    expect(fs.calls.write - writesBefore).toBe(1)
    expect(fs.calls.fdatasync - syncsBefore).toBe(1)
    await log.close()
  })

  it('never resolves an append before its fdatasync completed', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open({ dir, fs })
    const gate = fs.hold('fdatasync')
    let resolved = false
    const pending = log.append(sampleEvent(1)).then((r) => {
      resolved = true
      return r
    })
    await gate.reached
    await new Promise((r) => setTimeout(r, 30))
    expect(resolved).toBe(false)
    expect(log.head.seq).toBe(0)
    gate.release()
    expect((await pending).record.seq).toBe(1)
    expect(log.head.seq).toBe(1)
    await log.close()
  })

  it('flushes pending appends on close, is idempotent, and rejects appends after it', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const pending = Array.from({ length: 10 }, (_, i) => log.append(sampleEvent(i + 1)))
    await Promise.all([log.close(), log.close()])
    expect((await Promise.all(pending)).length).toBe(10)
    await expect(log.append(sampleEvent(11))).rejects.toMatchObject({
      name: 'StorageError',
      code: 'LOG_CLOSED',
    })
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 10 })
  })

  it('appends any JSON object, and rejects non-objects and records carrying chain fields', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open<Record<string, unknown>>({ dir })
    await expect(log.append([] as unknown as Record<string, unknown>)).rejects.toThrow(TypeError)
    await expect(log.append({ ...sampleEvent(1), seq: 5 })).rejects.toThrow(/seq/)
    await expect(log.append({ ...sampleEvent(1), hash: 'x' })).rejects.toThrow(TypeError)
    expect((await log.append({ anything: 'goes' })).record).toMatchObject({ seq: 1, anything: 'goes' })
    await log.close()
  })

  it('rejects a read of a line damaged after it was written with LogCorruptError naming file and line', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const positions = []
    for (let i = 1; i <= 3; i++) positions.push((await log.append(sampleEvent(i))).position)
    const file = join(dir, 'events', 'events-000001.jsonl')
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.replace('"user_id":"user-3"', '"user_id":"user-X"'))
    await expect(log.read([positions[2]!])).rejects.toMatchObject({
      name: 'LogCorruptError',
      file: 'events-000001.jsonl',
      line: 3,
      reason: 'hash does not match the line content',
    })
    expect(await log.read([positions[0]!])).toHaveLength(1)
    await log.close()
  })

  it('exposes StorageError with an errno-style code', () => {
    const err = new StorageError('ENOSPC', 'disk full')
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ENOSPC')
  })
})

describe('EventLog records', () => {
  it('resolves with the record exactly as stored (undefined members dropped, dates as strings)', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const { record, position } = await log.append({ ...sampleEvent(1), note: undefined, at: new Date(0) })
    expect(record).not.toHaveProperty('note')
    expect(record.at).toBe('1970-01-01T00:00:00.000Z')
    expect(await log.read([position])).toEqual([record])
    await log.close()
  })
})
