import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type ChainedRecord, GENESIS_HASH } from './chain.js'
import { LogCorruptError, ResumeMismatchError } from './errors.js'
import { EventLog } from './event-log.js'
import { sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

async function logOf(count: number, maxFileBytes = 2000) {
  const dir = await dirs.make()
  const { log } = await EventLog.open({ dir, maxFileBytes })
  for (let i = 1; i <= count; i++) await log.append(sampleEvent(i))
  return { dir, log }
}

describe('EventLog resumeAfter', () => {
  it('replays only the records after the point and continues the chain', async () => {
    const { dir, log } = await logOf(20)
    await log.close()
    const { log: middle } = await EventLog.open({ dir, maxFileBytes: 2000 })
    // The point of record 12: reopen a copy of history up to there by resuming after it.
    const seen: number[] = []
    for await (const _ of middle.lookup('x')) seen.push(0)
    const point = middle.resumePoint
    expect(point).toMatchObject({ seq: 20 })
    await middle.close()

    const replayed: number[] = []
    const { log: again, report } = await EventLog.open({
      dir,
      maxFileBytes: 2000,
      resumeAfter: point,
      onRecord: (r) => replayed.push(r.seq),
    })
    expect(replayed).toEqual([])
    expect(report.resumedFrom).toEqual(point)
    expect(again.head).toEqual({ seq: 20, hash: point.hash })
    const next = await again.append(sampleEvent(21))
    expect(next.record.prev_hash).toBe(point.hash)
    await again.close()
  })

  it('replays exactly the records after a point taken mid-log, across segments', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    for (let i = 1; i <= 7; i++) await log.append(sampleEvent(i))
    const point = log.resumePoint
    for (let i = 8; i <= 25; i++) await log.append(sampleEvent(i))
    await log.close()
    expect((await segmentFiles(dir)).length).toBeGreaterThan(3)

    const replayed: number[] = []
    const { log: again, report } = await EventLog.open({
      dir,
      maxFileBytes: 2000,
      resumeAfter: point,
      onRecord: (r) => replayed.push(r.seq),
    })
    expect(replayed).toEqual(Array.from({ length: 18 }, (_, i) => i + 8))
    expect(report.head.seq).toBe(25)
    expect(again.resumePoint.seq).toBe(25)
    await again.close()
  })

  it('does not read the segments before the point: damage there does not stop a resumed open', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    for (let i = 1; i <= 20; i++) await log.append(sampleEvent(i))
    const point = log.resumePoint
    await log.append(sampleEvent(21))
    await log.close()
    const first = join(dir, 'events', 'events-000001.jsonl')
    const text = await readFile(first, 'utf8')
    await writeFile(first, `{"broken":${text.slice(10)}`)
    await expect(EventLog.open({ dir, maxFileBytes: 2000 })).rejects.toBeInstanceOf(LogCorruptError)

    const replayed: number[] = []
    const { log: again } = await EventLog.open({
      dir,
      resumeAfter: point,
      onRecord: (r) => replayed.push(r.seq),
    })
    expect(replayed).toEqual([21])
    await again.close()
  })

  it('rejects a point from another log, a point off a line end, a missing segment and a wrong seq', async () => {
    const { dir, log } = await logOf(10)
    const point = log.resumePoint
    await log.close()
    const { dir: otherDir, log: other } = await logOf(10)
    const foreign = other.resumePoint
    await other.close()
    expect(otherDir).not.toBe(dir)
    // Same events, same places: a different log only by content; change one so hashes differ.
    const { log: third } = await EventLog.open({ dir: await dirs.make() })
    await third.append({ ...sampleEvent(1), note: 'other' })
    const thirdPoint = third.resumePoint
    await third.close()

    const attempts = [
      { ...point, hash: thirdPoint.hash },
      { ...point, offset: point.offset - 1 },
      { ...point, file: point.file + 5 },
      { ...point, seq: point.seq - 1 },
      { ...point, offset: point.offset + 10_000 },
      { ...point, hash: 'nope' },
    ]
    for (const resumeAfter of attempts) {
      await expect(EventLog.open({ dir, resumeAfter })).rejects.toBeInstanceOf(ResumeMismatchError)
    }
    // A failed resume leaves the lock free: a full replay works right after.
    const { log: full, report } = await EventLog.open({ dir })
    expect(report.records).toBe(10)
    expect(foreign.seq).toBe(10)
    await full.close()
  })

  it('treats seq 0 as a full replay', async () => {
    const { dir, log } = await logOf(3)
    await log.close()
    const replayed: number[] = []
    const { log: again } = await EventLog.open({
      dir,
      resumeAfter: { seq: 0, hash: GENESIS_HASH, file: 1, offset: 0 },
      onRecord: (r) => replayed.push(r.seq),
    })
    expect(replayed).toEqual([1, 2, 3])
    await again.close()
  })

  it('still cuts a torn tail after the point and still stops at a damaged complete line, with its line number', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    for (let i = 1; i <= 3; i++) await log.append(sampleEvent(i))
    const point = log.resumePoint
    for (let i = 4; i <= 5; i++) await log.append(sampleEvent(i))
    await log.close()
    const file = join(dir, 'events', 'events-000001.jsonl')
    await appendFile(file, '{"event":"session.st')
    const { log: cut, report } = await EventLog.open({ dir, resumeAfter: point })
    expect(report.cuts).toMatchObject([{ kind: 'torn-tail', line: 6 }])
    expect(cut.head.seq).toBe(5)
    await cut.close()

    const lines = (await readFile(file, 'utf8')).split('\n')
    lines[4] = lines[4]!.replace('user-5', 'user-6')
    await writeFile(file, lines.join('\n'))
    const error = await EventLog.open({ dir, resumeAfter: point }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: 'events-000001.jsonl', line: 5 })
  })

  it('gives the point of the empty log and of a log whose newest record ends a sealed segment', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    expect(log.resumePoint).toEqual({ seq: 0, hash: GENESIS_HASH, file: 1, offset: 0 })
    let last: ChainedRecord | undefined
    for (let i = 1; i <= 9; i++) last = (await log.append(sampleEvent(i))).record
    const point = log.resumePoint
    expect(point.seq).toBe(9)
    expect(point.hash).toBe(last!.hash)
    const size = (await readFile(join(dir, 'events', `events-00000${point.file}.jsonl`))).length
    expect(point.offset).toBe(size)
    await log.close()
  })
})
