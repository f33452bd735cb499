import { readdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeRecord, withoutChainFields } from './chain.js'
import { LogCorruptError } from './errors.js'
import { EventLog } from './event-log.js'
import type { LogPosition } from './recovery.js'
import type { ScrubStatus } from './scrub.js'
import { sampleEvent, tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const segmentPath = (dir: string, n: number) =>
  join(dir, 'events', `events-${String(n).padStart(6, '0')}.jsonl`)
const digestPath = (dir: string, n: number) =>
  join(dir, 'events', `events-${String(n).padStart(6, '0')}.digest.json`)

/** 30 events over several 2000-byte segments; returns their positions. */
async function writeLog(dir: string) {
  const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
  const positions: LogPosition[] = []
  for (let i = 1; i <= 30; i++) positions.push((await log.append(sampleEvent(i))).position)
  const point = log.resumePoint
  await log.close()
  return Object.assign(positions, { point })
}

async function replaceLine(dir: string, file: number, line: number, edit: (text: string) => string) {
  const lines = (await readFile(segmentPath(dir, file), 'utf8')).split('\n')
  lines[line - 1] = edit(lines[line - 1]!)
  await writeFile(segmentPath(dir, file), lines.join('\n'))
}

describe('EventLog scrub', () => {
  it('checks every sealed segment against its digest and reports a clean pass', async () => {
    const dir = await dirs.make()
    await writeLog(dir)
    const seen: ScrubStatus[] = []
    const { log } = await EventLog.open({
      dir,
      maxFileBytes: 2000,
      scrub: { onStatus: (s) => seen.push(s), startDelayMs: 60_000 },
    })
    const status = await log.scrub()
    const sealed = (await readdir(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl')).length - 1
    expect(status).toMatchObject({
      running: false,
      passes: 1,
      lastResult: 'ok',
      segmentsChecked: sealed,
      segmentsTotal: sealed,
    })
    expect(status.mismatch).toBeUndefined()
    expect(status.bytesChecked).toBeGreaterThan(sealed * 1000)
    expect(status.lastFinishedAt).toBeGreaterThan(Date.now() - 60_000)
    expect(seen.at(-1)).toEqual(status)
    expect(seen.some((s) => s.running)).toBe(true)
    await log.close()
  })

  it('finds an edit that keeps the stored hash: read() refuses the line and the scrub names file:line', async () => {
    const dir = await dirs.make()
    const positions = await writeLog(dir)
    // Record 2 is line 2 of segment 1: "user-2" becomes "user-9", its hash field left as it was.
    await replaceLine(dir, 1, 2, (text) => text.replace('"user_id":"user-2"', '"user_id":"user-9"'))
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    const error = await log.read([positions[1]!]).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: 'events-000001.jsonl', line: 2 })
    const status = await log.scrub()
    expect(status.lastResult).toBe('mismatch')
    expect(status.mismatch).toMatchObject({ file: 'events-000001.jsonl', line: 2 })
    expect(status.mismatch!.reason).toMatch(/hash/)
    await log.close()
  })

  it('finds a line forged with a recomputed hash: read() checks the next line, the scrub the chain', async () => {
    const dir = await dirs.make()
    const positions = await writeLog(dir)
    await replaceLine(dir, 1, 2, (text) => {
      const record = JSON.parse(text)
      const forged = { ...withoutChainFields(record), user_id: 'user-9' } // same length: positions still fit
      return encodeRecord(forged, record.seq, record.prev_hash).line.toString('utf8').trimEnd()
    })
    // A full replay links every line and refuses this log; a start from a snapshot does not read it.
    await expect(EventLog.open({ dir, maxFileBytes: 2000 })).rejects.toMatchObject({ line: 3 })
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000, resumeAfter: positions.point })
    await expect(log.read([positions[1]!])).rejects.toMatchObject({ file: 'events-000001.jsonl', line: 3 })
    const status = await log.scrub()
    expect(status.mismatch).toMatchObject({ file: 'events-000001.jsonl', line: 3 })
    await log.close()
  })

  it('names a segment whose bytes differ from its digest though every line verifies', async () => {
    const dir = await dirs.make()
    await writeLog(dir)
    // A digest that no longer describes its segment's bytes (the lines themselves are untouched).
    const digest = JSON.parse(await readFile(digestPath(dir, 2), 'utf8'))
    digest.sha256 = '0'.repeat(64)
    digest.blocks = ['0'.repeat(64)]
    // Keep the digest self-consistent (as an attacker or a bug would): its check is recomputed.
    const { createHash } = await import('node:crypto')
    const { check: _c, ...rest } = digest
    digest.check = createHash('sha256').update(JSON.stringify(rest)).digest('hex')
    await writeFile(digestPath(dir, 2), JSON.stringify(digest))
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000 })
    const status = await log.scrub()
    expect(status.mismatch).toMatchObject({ file: 'events-000002.jsonl', line: 1 })
    expect(status.mismatch!.reason).toMatch(/differ from its digest/)
    await log.close()
  })

  it('rewrites a missing or damaged digest once the segment itself verifies', async () => {
    const dir = await dirs.make()
    await writeLog(dir)
    const original = await readFile(digestPath(dir, 2), 'utf8')
    await unlink(digestPath(dir, 1))
    await writeFile(
      digestPath(dir, 2),
      original.replace(/"sha256":"(.)/, (_m, c) => `"sha256":"${c === 'a' ? 'b' : 'a'}`),
    )
    const warnings: string[] = []
    const logger = { info() {}, error() {}, warn: (_o: object, m: string) => warnings.push(m) }
    const { log } = await EventLog.open({ dir, maxFileBytes: 2000, logger })
    const status = await log.scrub()
    expect(status).toMatchObject({ lastResult: 'ok', digestsRebuilt: 2 })
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/missing digest/),
        expect.stringMatching(/corrupt digest/),
      ]),
    )
    expect(await readFile(digestPath(dir, 2), 'utf8')).toBe(original)
    expect((await log.scrub()).digestsRebuilt).toBe(2)
    await log.close()
  })

  it('reads at no more than the configured rate', async () => {
    const dir = await dirs.make()
    await writeLog(dir)
    const bytesPerSecond = 40_000
    const { log } = await EventLog.open({
      dir,
      maxFileBytes: 2000,
      scrub: { bytesPerSecond, startDelayMs: 60_000 },
    })
    const started = performance.now()
    const status = await log.scrub()
    const seconds = (performance.now() - started) / 1000
    expect(seconds).toBeGreaterThanOrEqual((status.bytesChecked / bytesPerSecond) * 0.9)
    await log.close()
  })

  it('starts on its own after open and stops at close', async () => {
    const dir = await dirs.make()
    await writeLog(dir)
    const done = new Promise<ScrubStatus>((resolve) => {
      void EventLog.open({
        dir,
        maxFileBytes: 2000,
        scrub: { startDelayMs: 0, onStatus: (s) => s.passes === 1 && resolve(s) },
      }).then(({ log }) => done.then(() => log.close()))
    })
    expect(await done).toMatchObject({ passes: 1, lastResult: 'ok' })
  })

  it('runs next to appends that seal segments without reporting the segments being sealed', async () => {
    const dir = await dirs.make()
    const seen: ScrubStatus[] = []
    const { log } = await EventLog.open({
      dir,
      maxFileBytes: 2000,
      scrub: { startDelayMs: 60_000, onStatus: (s) => seen.push(s) },
    })
    const appends = (async () => {
      for (let i = 1; i <= 40; i++) await log.append(sampleEvent(i))
    })()
    let passes = 0
    while (passes < 30) {
      await log.scrub()
      passes++
      if (passes > 3 && (await Promise.race([appends.then(() => true), Promise.resolve(false)]))) break
    }
    await appends
    expect((await log.scrub()).lastResult).toBe('ok')
    expect(seen.filter((s) => s.mismatch !== undefined)).toEqual([])
    await log.close()
  })
})
