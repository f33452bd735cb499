import { readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LogCorruptError } from './errors.js'
import { EventLog } from './event-log.js'
import { readLog } from './read-log.js'
import { linesOf, sampleEvent, sampleRules, segmentFiles, tempDirs } from './testing/log-fixtures.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const SEGMENT = 'events-000001.jsonl'

/** Two sessions with start, touches and end, interleaved: 6 lines. */
async function writeSessions(maxFileBytes?: number): Promise<string> {
  const dir = await dirs.make()
  const { log } = await EventLog.open(maxFileBytes ? { dir, maxFileBytes } : { dir })
  await log.append(sampleEvent(1, 'session.start', 1))
  await log.append(sampleEvent(2, 'session.start', 2))
  await log.append(sampleEvent(3, 'session.touch', 1))
  await log.append(sampleEvent(4, 'session.end', 1))
  await log.append(sampleEvent(5, 'session.touch', 2))
  await log.append(sampleEvent(6, 'session.end', 2))
  await log.close()
  return dir
}

async function rewrite(dir: string, edit: (lines: string[]) => string[], file = SEGMENT): Promise<void> {
  await writeFile(join(dir, 'events', file), `${edit(await linesOf(dir, file)).join('\n')}\n`)
}

async function appendAll(events: Record<string, unknown>[]): Promise<string> {
  const dir = await dirs.make()
  const { log } = await EventLog.open({ dir })
  for (const event of events) await log.append(event)
  await log.close()
  return dir
}

describe('verifyLog', () => {
  it('passes an intact log and counts records, sessions and event kinds', async () => {
    const dir = await writeSessions()
    const progress: [number, number][] = []
    const report = await verifyLog(dir, {
      rules: sampleRules,
      onProgress: (done, total) => progress.push([done, total]),
    })
    expect(report).toMatchObject({ ok: true, files: 1, records: 6, keys: 2 })
    expect(report.events).toEqual({ 'session.start': 2, 'session.touch': 2, 'session.end': 2 })
    expect(progress.at(-1)?.[0]).toBe(progress.at(-1)?.[1])
  })

  it.each([
    [
      'an edited line',
      (l: string[]) => l.map((x, i) => (i === 2 ? x.replace('user-1', 'user-2') : x)),
      3,
      /hash/,
    ],
    ['a deleted line', (l: string[]) => l.filter((_, i) => i !== 2), 3, /seq is 4, expected 3/],
    [
      'an inserted line',
      (l: string[]) => [...l.slice(0, 2), l[1]!, ...l.slice(2)],
      3,
      /seq is 2, expected 3/,
    ],
    ['reordered lines', (l: string[]) => [l[0]!, l[1]!, l[3]!, l[2]!, l[4]!, l[5]!], 3, /seq is 4/],
  ])('detects %s and names file and line', async (_, edit, line, reason) => {
    const dir = await writeSessions()
    await rewrite(dir, edit)
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { file: SEGMENT, line, reason },
    })
  })

  it('detects a cut-off tail', async () => {
    const dir = await writeSessions()
    const file = join(dir, 'events', SEGMENT)
    await truncate(file, (await readFile(file)).length - 20)
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: false,
      records: 5,
      problem: { file: SEGMENT, line: 6 },
    })
  })

  it('detects lines cut at a line boundary when given the expected head', async () => {
    const dir = await writeSessions()
    const head = (await verifyLog(dir, { rules: sampleRules })).head
    await rewrite(dir, (l) => l.slice(0, 4))
    expect((await verifyLog(dir, { rules: sampleRules })).ok).toBe(true)
    expect(await verifyLog(dir, { rules: sampleRules, expectedHead: head })).toMatchObject({
      ok: false,
      problem: { reason: /seq 6/ },
    })
  })

  it('names the file of a problem in a later segment', async () => {
    const dir = await writeSessions(1300)
    const files = await segmentFiles(dir)
    expect(files.length).toBeGreaterThan(1)
    await rewrite(dir, (l) => l.map((x) => x.replace('caregiver-7', 'caregiver-0')), files[1])
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { file: files[1], line: 1 },
    })
  })

  it('detects a second session.start for the same session', async () => {
    const dir = await appendAll([sampleEvent(1, 'session.start', 1), sampleEvent(2, 'session.start', 1)])
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { line: 2, reason: /second session.start/ },
    })
  })

  it('detects a session.end without an earlier start and a second end', async () => {
    const early = await appendAll([sampleEvent(1, 'session.end', 1)])
    expect(await verifyLog(early, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { line: 1, reason: /before session.start/ },
    })
    const twice = await appendAll([
      sampleEvent(1, 'session.start', 1),
      sampleEvent(2, 'session.end', 1),
      sampleEvent(3, 'session.end', 1),
    ])
    expect(await verifyLog(twice, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { line: 3, reason: /second session.end/ },
    })
  })

  it('detects a timestamp going backwards', async () => {
    const dir = await appendAll([sampleEvent(5), sampleEvent(4)])
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: false,
      problem: { line: 2, reason: /before the previous/ },
    })
  })

  it('reports an empty or missing log as ok with no records', async () => {
    expect(await verifyLog(await dirs.make(), { rules: sampleRules })).toMatchObject({
      ok: true,
      records: 0,
      files: 0,
    })
  })
})

describe('readLog', () => {
  it('streams every record in order with positions that read back the same record', async () => {
    const dir = await writeSessions(1300)
    const seen = []
    for await (const item of readLog(dir)) seen.push(item)
    expect(seen.map((s) => s.record.seq)).toEqual([1, 2, 3, 4, 5, 6])
    const { log } = await EventLog.open({ dir })
    expect(await log.read(seen.map((s) => s.position))).toEqual(seen.map((s) => s.record))
    await log.close()
  })

  it('throws LogCorruptError at a bad line after yielding the good ones', async () => {
    const dir = await writeSessions()
    await rewrite(dir, (l) => l.map((x, i) => (i === 3 ? x.replace('explicit', 'implicit') : x)))
    const seqs: number[] = []
    const run = async () => {
      for await (const { record } of readLog(dir)) seqs.push(record.seq)
    }
    await expect(run()).rejects.toBeInstanceOf(LogCorruptError)
    expect(seqs).toEqual([1, 2, 3])
  })
})

describe('verifyLog timestamp rule (rules.timestampField)', () => {
  async function logWithTimestamps(timestamps: (string | undefined)[]): Promise<string> {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    for (const [i, timestamp] of timestamps.entries()) {
      const event = { ...sampleEvent(i + 1, 'session.touch', 1), timestamp }
      if (timestamp === undefined) delete event.timestamp
      await log.append(event)
    }
    await log.close()
    return dir
  }
  const rules = { timestampField: 'timestamp' }

  it('accepts equal timestamps, in the canonical and in other ISO forms', async () => {
    const same = '2026-03-01T12:00:00.000Z'
    expect(await verifyLog(await logWithTimestamps([same, same]), { rules })).toMatchObject({ ok: true })
    const other = '2026-03-01T12:00:00Z'
    expect(await verifyLog(await logWithTimestamps([other, other]), { rules })).toMatchObject({ ok: true })
  })

  it('reports a timestamp going back in a non-canonical form, a missing one and one that is not a date', async () => {
    const back = await logWithTimestamps(['2026-03-01T12:00:01+00:00', '2026-03-01T12:00:00Z'])
    expect(await verifyLog(back, { rules })).toMatchObject({
      ok: false,
      problem: {
        line: 2,
        reason: 'timestamp 2026-03-01T12:00:00Z is before the previous 2026-03-01T12:00:01+00:00',
      },
    })
    const missing = await logWithTimestamps(['2026-03-01T12:00:00.000Z', undefined])
    expect(await verifyLog(missing, { rules })).toMatchObject({
      problem: { line: 2, reason: 'timestamp is missing' },
    })
    const notADate = await logWithTimestamps(['2026-03-01T12:00:00.000Z', 'yesterday'])
    expect(await verifyLog(notADate, { rules })).toMatchObject({
      problem: { line: 2, reason: 'timestamp yesterday is not a date' },
    })
  })
})
