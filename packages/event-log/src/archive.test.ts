import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { archiveSegments, readArchiveManifest } from './archive.js'
import type { ChainedRecord } from './chain.js'
import { LogCorruptError, LogLockedError } from './errors.js'
import { EventLog, type OpenLogOptions } from './event-log.js'
import { readLog } from './read-log.js'
import { scanLog } from './scan-log.js'
import { FaultyFileSystem } from './testing/faulty-file-system.js'
import { sampleEvent, sampleRules, tempDirs } from './testing/log-fixtures.js'
import { type CrashKind, PowerLossFileSystem } from './testing/power-loss-file-system.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

type Sample = Record<string, unknown>
const timeOf = (r: ChainedRecord<Sample>) => Date.parse(String(r.timestamp))
const options: Pick<OpenLogOptions<Sample>, 'indexKeys' | 'recordTime' | 'maxFileBytes'> = {
  maxFileBytes: 2500,
  indexKeys: (r) => [`s:${r.session_id}`],
  recordTime: timeOf,
}

/** Sessions 1..30: start i, end i (60 events, increasing time), over several segments. */
async function writeLog(dir: string) {
  const { log } = await EventLog.open<Sample>({ dir, ...options })
  const records: ChainedRecord<Sample>[] = []
  for (let s = 1; s <= 30; s++) {
    records.push((await log.append(sampleEvent(2 * s - 1, 'session.start', s))).record)
    records.push((await log.append(sampleEvent(2 * s, 'session.end', s))).record)
  }
  await log.close()
  return records
}

const names = async (path: string) => (await readdir(path)).sort()

describe('archiveSegments', () => {
  it('moves sealed segments older than the date with their sidecars; the log opens, scrubs and verifies across the boundary', async () => {
    const dir = await dirs.make()
    const to = join(await dirs.make(), 'cold')
    const records = await writeLog(dir)
    const before = timeOf(records[30]!)
    const report = await archiveSegments(dir, { before, to })
    expect(report.archived.length).toBeGreaterThan(1)
    expect(report.stoppedAt?.reason).toMatch(/has records from/)
    const manifest = (await readArchiveManifest(dir))!
    expect(manifest.through.time_max).toBeLessThan(before)
    const archivedFiles = await names(to)
    for (const name of report.archived) {
      expect(archivedFiles).toEqual(
        expect.arrayContaining([
          name,
          name.replace('.jsonl', '.idx'),
          name.replace('.jsonl', '.digest.json'),
        ]),
      )
    }
    const kept = (await names(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl'))
    expect(kept.some((n) => report.archived.includes(n))).toBe(false)

    const replayed: number[] = []
    const { log, report: opened } = await EventLog.open<Sample>({
      dir,
      ...options,
      onRecord: (r) => replayed.push(r.seq),
    })
    expect(replayed[0]).toBe(manifest.through.seq + 1)
    expect(opened.head.seq).toBe(60)
    expect(log.archivedBefore).toBe(manifest.through.time_max)
    // An archived session: not found here, and its time is within what was archived.
    const archivedSession = records[0]!
    const found = []
    for await (const p of log.lookup(`s:${archivedSession.session_id}`)) found.push(p)
    expect(found).toEqual([])
    expect(timeOf(archivedSession)).toBeLessThanOrEqual(log.archivedBefore!)
    const newest = records[59]!
    const positions = []
    for await (const p of log.lookup(`s:${newest.session_id}`)) positions.push(p)
    expect(await log.read(positions)).toHaveLength(2)
    expect(await log.scrub()).toMatchObject({ lastResult: 'ok' })
    expect((await log.append(sampleEvent(61))).record.seq).toBe(61)
    await log.close()

    const alone = await verifyLog(dir, { rules: sampleRules })
    expect(alone).toMatchObject({ ok: true, archive: { verified: false, fromSeq: manifest.through.seq } })
    const across = await verifyLog(dir, { rules: sampleRules, archiveDir: to })
    expect(across).toMatchObject({ ok: true, records: 61, archive: { verified: true } })
    const streamed = []
    for await (const { record } of readLog(dir)) streamed.push(record.seq)
    expect(streamed[0]).toBe(manifest.through.seq + 1)
    expect((await scanLog(dir, () => {})).seq).toBe(61)
  })

  it('extends the manifest on a later run and verifyLog follows a tampered archive', async () => {
    const dir = await dirs.make()
    const to = join(await dirs.make(), 'cold')
    const records = await writeLog(dir)
    const first = await archiveSegments(dir, { before: timeOf(records[15]!), to })
    const second = await archiveSegments(dir, { before: timeOf(records[45]!), to })
    expect(first.archived.length).toBeGreaterThan(0)
    expect(second.archived.length).toBeGreaterThan(0)
    const manifest = (await readArchiveManifest(dir))!
    expect(manifest.segments.map((s) => s.name)).toEqual([...first.archived, ...second.archived])
    expect(await verifyLog(dir, { archiveDir: to })).toMatchObject({ ok: true, records: 60 })
    const path = join(to, first.archived[0]!)
    await writeFile(path, (await readFile(path, 'utf8')).replace('"user_id":"user-1"', '"user_id":"user-9"'))
    expect(await verifyLog(dir, { archiveDir: to })).toMatchObject({
      ok: false,
      problem: { file: first.archived[0] },
    })
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('finishes an interrupted run: the manifest is written first, the log opens and verifies in between', async () => {
    const dir = await dirs.make()
    const to = join(await dirs.make(), 'cold')
    const records = await writeLog(dir)
    const fs = new FaultyFileSystem()
    // The second segment's removal fails: the first is archived, the second copied but still in the log.
    fs.fail('unlink', { path: 'events-000002.jsonl', errno: 'EIO' })
    await expect(archiveSegments(dir, { before: timeOf(records[40]!), to, fs })).rejects.toMatchObject({
      code: 'EIO',
    })
    expect(await readArchiveManifest(dir)).toBeDefined()
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({ ok: true })
    const { log, report } = await EventLog.open<Sample>({ dir, ...options })
    expect(report.head.seq).toBe(60)
    await log.close()

    const rerun = await archiveSegments(dir, { before: timeOf(records[40]!), to })
    expect(rerun.finished).toContain('events-000002.jsonl')
    const manifest = (await readArchiveManifest(dir))!
    const kept = (await names(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl'))
    for (const s of manifest.segments) expect(kept).not.toContain(s.name)
    expect(await verifyLog(dir, { rules: sampleRules, archiveDir: to })).toMatchObject({
      ok: true,
      records: 60,
    })
  })

  it('refuses while the log is open, and refuses a damaged segment without moving anything', async () => {
    const dir = await dirs.make()
    const to = join(await dirs.make(), 'cold')
    const records = await writeLog(dir)
    const { log } = await EventLog.open<Sample>({ dir, ...options })
    await expect(archiveSegments(dir, { before: Date.now(), to })).rejects.toBeInstanceOf(LogLockedError)
    await log.close()
    const path = join(dir, 'events', 'events-000001.jsonl')
    await writeFile(path, (await readFile(path, 'utf8')).replace('"user_id":"user-1"', '"user_id":"user-9"'))
    await expect(archiveSegments(dir, { before: timeOf(records[59]!), to })).rejects.toBeInstanceOf(
      LogCorruptError,
    )
    expect(await readArchiveManifest(dir)).toBeUndefined()
    expect(await names(to)).toEqual([])
  })

  it('stops at a segment without a known time unless recordTime is given', async () => {
    const dir = await dirs.make()
    const to = join(await dirs.make(), 'cold')
    const { log } = await EventLog.open({ dir, maxFileBytes: 2500 })
    for (let i = 1; i <= 30; i++) await log.append(sampleEvent(i))
    await log.close()
    const before = Date.parse('2030-01-01')
    const none = await archiveSegments(dir, { before, to })
    expect(none.archived).toEqual([])
    expect(none.stoppedAt).toMatchObject({
      file: 'events-000001.jsonl',
      reason: expect.stringMatching(/no time range/),
    })
    const all = await archiveSegments(dir, { before, to, recordTime: (r) => Date.parse(String(r.timestamp)) })
    expect(all.archived.length).toBeGreaterThan(0)
    expect(all.stoppedAt?.reason).toMatch(/active segment/)
  })

  it.each<CrashKind>(['power-loss', 'torn'])(
    'a crash at any mutating call of archiving (%s) leaves a log that opens and verifies, and a rerun finishes',
    async (kind) => {
      let crashed = true
      let points = 0
      for (let k = 1; crashed; k++) {
        const fs = new PowerLossFileSystem({ random: lcg(k) })
        await fs.mkdir('/data')
        await fs.syncDir('/')
        const { log } = await EventLog.open<Sample>({ dir: '/data', fs, ...options })
        const records: ChainedRecord<Sample>[] = []
        for (let s = 1; s <= 10; s++) {
          records.push((await log.append(sampleEvent(2 * s - 1, 'session.start', s))).record)
          records.push((await log.append(sampleEvent(2 * s, 'session.end', s))).record)
        }
        await log.close()
        const before = timeOf(records[15]!)
        fs.crashAt(k)
        await archiveSegments('/data', { before, to: '/cold', fs }).catch((err: unknown) => {
          if (!fs.crashed) throw err
        })
        crashed = fs.crashed
        fs.reboot(kind)
        points++
        const { log: again, report } = await EventLog.open<Sample>({ dir: '/data', fs, ...options })
        expect(report.head.seq).toBe(20)
        await again.close()
        expect(await verifyLog('/data', { fs, rules: sampleRules })).toMatchObject({ ok: true })
        await fs.mkdir('/cold')
        const rerun = await archiveSegments('/data', { before, to: '/cold', fs })
        expect(rerun.manifest).toBeDefined()
        const across = await verifyLog('/data', { fs, rules: sampleRules, archiveDir: '/cold' })
        expect({ k, ...across }).toMatchObject({ k, ok: true, records: 20 })
      }
      expect(points).toBeGreaterThan(10)
    },
    120_000,
  )
})

function lcg(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}
