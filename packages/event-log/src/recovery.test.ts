import { createHash } from 'node:crypto'
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'
import { LogCorruptError } from './errors.js'
import { EventLog } from './event-log.js'
import { FaultyFileSystem, type FsOperation, withoutSync } from './testing/faulty-file-system.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const SEGMENT = 'events-000001.jsonl'

async function writeLog(count: number, maxFileBytes?: number): Promise<string> {
  const dir = await dirs.make()
  const { log } = await EventLog.open(maxFileBytes ? { dir, maxFileBytes } : { dir })
  for (let i = 1; i <= count; i++) await log.append(sampleEvent(i))
  await log.close()
  return dir
}

/** The log without its line 2, every later line re-sequenced and re-hashed (prev_hash left as it was). */
async function withoutLineTwo(dir: string): Promise<string> {
  const lines = (await linesOf(dir)).map((line) => JSON.parse(line) as Record<string, unknown>)
  lines.splice(1, 1)
  const out: string[] = []
  for (const [i, record] of lines.entries()) {
    const { hash: _, ...rest } = record
    const unhashed = { ...rest, seq: i + 1 }
    out.push(JSON.stringify({ ...unhashed, hash: sha256(canonicalJson(unhashed)) }))
  }
  return `${out.join('\n')}\n`
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {}
  for (const name of (await readdir(join(dir, 'events'))).sort()) {
    files[name] = (await readFile(join(dir, 'events', name))).toString('base64')
  }
  return files
}

// Every byte offset in [from, to); a mutation run (CARE_MUTATION_RUN=1, vitest.mutation.config.ts) runs
// this test once per mutant, so there it takes the first and last eight offsets and every 23rd between.
function cutPoints(from: number, to: number): number[] {
  const all = Array.from({ length: to - from }, (_, i) => from + i)
  if (process.env.CARE_MUTATION_RUN !== '1') return all
  return all.filter((cut, i) => i < 8 || to - cut <= 8 || i % 23 === 0)
}

describe('recovery on open', () => {
  it('cuts a torn last record at every byte offset, saves it to .broken and continues the chain', {
    timeout: 60_000,
  }, async () => {
    const source = await dirs.make()
    const writer = await EventLog.open({ dir: source })
    await writer.log.append(sampleEvent(1))
    await writer.log.append(sampleEvent(2))
    // A touch is the most common record (~370 bytes); every one of its bytes is a cut point.
    await writer.log.append(sampleEvent(3, 'session.touch', 1))
    await writer.log.close()
    const bytes = await readFile(join(source, 'events', SEGMENT))
    const lastStart = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1
    const [, second] = (await linesOf(source)).map((l) => JSON.parse(l))
    const dir = await dirs.make()
    await mkdir(join(dir, 'events'))
    // ~400 recoveries: syncs are skipped here (durability ordering is what the crash tests check).
    const fs = withoutSync()
    for (const cut of cutPoints(lastStart + 1, bytes.length)) {
      await rm(join(dir, 'events', `${SEGMENT}.broken`), { force: true })
      await writeFile(join(dir, 'events', SEGMENT), bytes.subarray(0, cut))
      const { log, report } = await EventLog.open({ dir, fs })
      expect(report.head).toEqual({ seq: 2, hash: second.hash })
      expect(report.cuts).toEqual([
        expect.objectContaining({ kind: 'torn-tail', file: SEGMENT, line: 3, offset: lastStart }),
      ])
      const broken = await readFile(join(dir, 'events', `${SEGMENT}.broken`))
      expect(broken.equals(bytes.subarray(lastStart, cut))).toBe(true)
      const next = await log.append(sampleEvent(3, 'session.touch', 1))
      expect(next.record).toMatchObject({ seq: 3, prev_hash: second.hash })
      await log.close()
      const verified = await verifyLog(dir)
      expect(verified.ok, `cut at ${cut}: ${JSON.stringify(verified)}`).toBe(true)
    }
  })

  it('refuses a complete last line whose hash fails (an acknowledged record may be on it), naming file:line', async () => {
    const dir = await writeLog(3)
    const lines = await linesOf(dir)
    lines[2] = lines[2]!.replace('"user_id":"user-3"', '"user_id":"user-X"')
    await writeFile(join(dir, 'events', SEGMENT), `${lines.join('\n')}\n`)
    const before = await snapshot(dir)
    const error = await EventLog.open({ dir }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: SEGMENT, line: 3, reason: expect.stringMatching(/hash/) })
    // Nothing was cut or moved: the operator decides.
    expect(await snapshot(dir)).toEqual(before)
    const { log, report } = await EventLog.open({ dir, repair: true })
    expect(report.head.seq).toBe(2)
    expect(report.cuts).toEqual([expect.objectContaining({ kind: 'repair', line: 3 })])
    await log.close()
  })

  it('refuses a fake complete line appended at the end (valid JSON, not chained)', async () => {
    const dir = await writeLog(2)
    const fake = JSON.stringify({
      ...sampleEvent(3),
      seq: 3,
      prev_hash: '0'.repeat(64),
      hash: 'f'.repeat(64),
    })
    await writeFile(join(dir, 'events', SEGMENT), `${fake}\n`, { flag: 'a' })
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ name: 'LogCorruptError', line: 3 })
  })

  it('refuses a bad complete line even when an incomplete fragment follows it', async () => {
    const dir = await writeLog(3)
    const lines = await linesOf(dir)
    lines[2] = lines[2]!.replace('caregiver-7', 'caregiver-8')
    await writeFile(join(dir, 'events', SEGMENT), `${lines.join('\n')}\n{"event":"sess`)
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ name: 'LogCorruptError', line: 3 })
  })

  it('cuts a tail of NUL bytes (power loss on an extended file) as a torn tail, into .broken', async () => {
    const dir = await writeLog(2)
    const intact = await readFile(join(dir, 'events', SEGMENT))
    await writeFile(join(dir, 'events', SEGMENT), Buffer.alloc(700), { flag: 'a' })
    const { log, report } = await EventLog.open({ dir })
    expect(report.cuts).toEqual([expect.objectContaining({ kind: 'torn-tail', line: 3, bytes: 700 })])
    expect(await readFile(join(dir, 'events', SEGMENT))).toEqual(intact)
    expect(await readFile(join(dir, 'events', `${SEGMENT}.broken`))).toEqual(Buffer.alloc(700))
    expect((await log.append(sampleEvent(3))).record.seq).toBe(3)
    await log.close()
  })

  it('refuses a log whose line 2 was deleted and the rest re-sequenced and re-hashed (prev_hash broken)', async () => {
    const dir = await writeLog(4)
    await writeFile(join(dir, 'events', SEGMENT), await withoutLineTwo(dir))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({
      name: 'LogCorruptError',
      line: 2,
      reason: "prev_hash does not match the previous line's hash",
    })
    expect(await verifyLog(dir)).toMatchObject({
      ok: false,
      problem: { file: SEGMENT, line: 2, reason: "prev_hash does not match the previous line's hash" },
    })
  })

  it('throws LogCorruptError naming file and line for an edited earlier line, and opens with repair', async () => {
    const dir = await writeLog(5)
    const lines = await linesOf(dir)
    lines[1] = lines[1]!.replace('caregiver-7', 'caregiver-8')
    await writeFile(join(dir, 'events', SEGMENT), `${lines.join('\n')}\n`)

    const error = await EventLog.open({ dir }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: SEGMENT, line: 2, reason: expect.stringMatching(/hash/) })
    expect(String((error as Error).message)).toContain(SEGMENT)

    const warnings: string[] = []
    const logger = { info() {}, warn: (_: object, m: string) => warnings.push(m), error() {} }
    const { log, report } = await EventLog.open({ dir, repair: true, logger })
    expect(report.head.seq).toBe(1)
    expect(report.cuts).toEqual([expect.objectContaining({ kind: 'repair', line: 2 })])
    expect(warnings.length).toBe(1)
    const broken = await readFile(join(dir, 'events', `${SEGMENT}.broken`), 'utf8')
    expect(broken).toBe(`${lines.slice(1).join('\n')}\n`)
    expect((await log.append(sampleEvent(2))).record.seq).toBe(2)
    await log.close()
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 2 })
  })

  it('with repair, moves every later segment to .broken when an earlier segment is corrupt', async () => {
    const dir = await writeLog(12, 1200)
    const files = await segmentFiles(dir)
    expect(files.length).toBeGreaterThanOrEqual(3)
    const lines = await linesOf(dir, files[0])
    lines[1] = lines[1]!.replace('"seq":2', '"seq":7')
    await writeFile(join(dir, 'events', files[0]!), `${lines.join('\n')}\n`)
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ file: files[0], line: 2 })
    const { log, report } = await EventLog.open({ dir, repair: true })
    expect(report.head.seq).toBe(1)
    expect(await segmentFiles(dir)).toEqual([files[0]])
    expect(report.cuts.map((c) => c.file)).toEqual(files)
    expect((await log.append(sampleEvent(2))).position.file).toBe(1)
    await log.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('refuses a log with a missing segment and, with repair, continues after the last intact one', async () => {
    const dir = await writeLog(12, 1200)
    const files = await segmentFiles(dir)
    await rm(join(dir, 'events', files[1]!))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ file: files[2], line: 1 })
    const intact = (await linesOf(dir, files[0])).length
    const { log, report } = await EventLog.open({ dir, repair: true })
    expect(report.head.seq).toBe(intact)
    const next = await log.append(sampleEvent(intact + 1))
    expect(next.record.seq).toBe(intact + 1)
    await log.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('accepts a line whose keys were reordered but whose content is unchanged', async () => {
    const dir = await writeLog(3)
    const lines = await linesOf(dir)
    const parsed = JSON.parse(lines[1]!) as Record<string, unknown>
    lines[1] = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()))
    await writeFile(join(dir, 'events', SEGMENT), `${lines.join('\n')}\n`)
    const { log, report } = await EventLog.open({ dir })
    expect(report.head.seq).toBe(3)
    expect(report.cuts).toEqual([])
    await log.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('keeps an empty last segment (crash right after rotation) and appends to it', async () => {
    const dir = await writeLog(3)
    await writeFile(join(dir, 'events', 'events-000002.jsonl'), '')
    const { log, report } = await EventLog.open({ dir })
    expect(report.head.seq).toBe(3)
    expect((await log.append(sampleEvent(4))).position).toMatchObject({ file: 2, offset: 0 })
    await log.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  const crashes: [FsOperation, number][] = [
    ['write', 1],
    ['fsync', 1],
    ['ftruncate', 1],
    ['fsync', 2],
    ['fsyncDir', 1],
  ]
  it.each(crashes)(
    'gives a byte-identical log when recovery crashes at %s #%i and runs again',
    async (op, nth) => {
      const source = await writeLog(4)
      const bytes = await readFile(join(source, 'events', SEGMENT))
      const torn = bytes.subarray(0, bytes.length - 40)
      await writeFile(join(source, 'events', SEGMENT), torn)
      const reference = await dirs.make()
      await cp(source, reference, { recursive: true })
      const clean = await EventLog.open({ dir: reference })
      await clean.log.close()

      const fs = new FaultyFileSystem()
      fs.fail(op, { nth, errno: 'EIO', path: 'events' })
      await expect(EventLog.open({ dir: source, fs })).rejects.toMatchObject({ code: 'EIO' })
      const again = await EventLog.open({ dir: source })
      expect(again.report.head).toEqual(clean.report.head)
      await again.log.close()
      expect(await snapshot(source)).toEqual(await snapshot(reference))
    },
  )
})

describe('checkpoint.json', () => {
  it('is written at rotation and names the last record of the sealed segment', async () => {
    const dir = await writeLog(12, 1200)
    const files = await segmentFiles(dir)
    const checkpoint = JSON.parse(await readFile(join(dir, 'events', 'checkpoint.json'), 'utf8'))
    const sealed = files.at(-2)!
    const lastSealed = JSON.parse((await linesOf(dir, sealed)).at(-1)!)
    const size = (await readFile(join(dir, 'events', sealed))).length
    expect(checkpoint).toEqual({
      seq: lastSealed.seq,
      hash: lastSealed.hash,
      file: files.length - 1,
      offset: size,
    })
  })

  it('lets recovery skip re-hashing sealed lines, while verifyLog still catches an edit there', async () => {
    const dir = await writeLog(12, 1200)
    await rewrite(dir, (l) => l.map((x, i) => (i === 0 ? x.replace('caregiver-7', 'caregiver-0') : x)))
    const { log, report } = await EventLog.open({ dir, maxFileBytes: 1200 })
    expect(report.head.seq).toBe(12)
    await log.close()
    expect(await verifyLog(dir)).toMatchObject({ ok: false, problem: { file: SEGMENT, line: 1 } })
  })

  it('still re-hashes every line after the checkpointed record', async () => {
    const dir = await writeLog(12, 1200)
    const files = await segmentFiles(dir)
    const { seq } = JSON.parse(await readFile(join(dir, 'events', 'checkpoint.json'), 'utf8')) as {
      seq: number
    }
    // The first line of the open segment follows the checkpoint: an edit there must stop the open.
    const last = files.at(-1)!
    await rewrite(dir, (l) => l.map((x, i) => (i === 0 ? x.replace('caregiver-7', 'caregiver-0') : x)), last)
    await expect(EventLog.open({ dir, maxFileBytes: 1200 })).rejects.toMatchObject({
      name: 'LogCorruptError',
      file: last,
      line: 1,
      reason: 'hash does not match the line content',
    })
    expect(seq).toBeGreaterThan(0)
  })

  it('still re-hashes every line when checkpoint.json is missing', async () => {
    const dir = await writeLog(12, 1200)
    await rm(join(dir, 'events', 'checkpoint.json'))
    await rewrite(dir, (l) => l.map((x, i) => (i === 0 ? x.replace('caregiver-7', 'caregiver-0') : x)))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ file: SEGMENT, line: 1 })
  })

  it('refuses a log whose sealed record no longer matches the checkpoint', async () => {
    const dir = await writeLog(12, 1200)
    const checkpointPath = join(dir, 'events', 'checkpoint.json')
    const checkpoint = JSON.parse(await readFile(checkpointPath, 'utf8'))
    await writeFile(checkpointPath, JSON.stringify({ ...checkpoint, hash: 'f'.repeat(64) }))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ reason: /checkpoint/ })
    const { log, report } = await EventLog.open({ dir, repair: true })
    expect(report.head.seq).toBe(checkpoint.seq - 1)
    await log.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })
})

async function rewrite(dir: string, edit: (lines: string[]) => string[], file = SEGMENT): Promise<void> {
  await writeFile(join(dir, 'events', file), `${edit(await linesOf(dir, file)).join('\n')}\n`)
}
