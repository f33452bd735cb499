import { appendFile, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EventLog } from './event-log.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'

// What recovery may cut on its own (an incomplete final line of the last segment) and what it must
// refuse, and how checkpoint.json is kept or dropped around a cut.
const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const MAX = 1200

async function rotatedLog(count = 12): Promise<string> {
  const dir = await dirs.make()
  const { log } = await EventLog.open({ dir, maxFileBytes: MAX })
  for (let i = 1; i <= count; i++) await log.append(sampleEvent(i))
  await log.close()
  expect((await segmentFiles(dir)).length).toBeGreaterThan(2)
  return dir
}

const checkpointPath = (dir: string) => join(dir, 'events', 'checkpoint.json')
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  )

async function openError(dir: string, repair = false): Promise<unknown> {
  return EventLog.open({ dir, maxFileBytes: MAX, repair }).then(
    async ({ log }) => {
      await log.close()
      return undefined
    },
    (error: unknown) => error,
  )
}

describe('recovery and the tail of a segment', () => {
  it('counts every byte of an intact log it opened', async () => {
    const dir = await rotatedLog()
    let size = 0
    for (const file of await segmentFiles(dir)) size += (await stat(join(dir, 'events', file))).size
    const { log, report } = await EventLog.open({ dir, maxFileBytes: MAX })
    await log.close()
    expect(report).toMatchObject({ records: 12, bytes: size, cuts: [] })
  })

  it('cuts an incomplete final line of the last segment, saying why, and keeps checkpoint.json', async () => {
    const dir = await rotatedLog()
    const checkpoint = await readFile(checkpointPath(dir), 'utf8')
    const last = (await segmentFiles(dir)).at(-1)!
    const lines = await linesOf(dir, last)
    await appendFile(join(dir, 'events', last), '{"seq":13,"prev_')
    const { log, report } = await EventLog.open({ dir, maxFileBytes: MAX })
    await log.close()
    expect(report.cuts).toEqual([
      expect.objectContaining({
        kind: 'torn-tail',
        file: last,
        line: lines.length + 1,
        bytes: 16,
        reason: 'line has no trailing newline (incomplete write)',
      }),
    ])
    expect(await readFile(checkpointPath(dir), 'utf8')).toBe(checkpoint)
  })

  it('refuses an incomplete line at the end of a sealed segment (a later one exists): not a torn append', async () => {
    const dir = await rotatedLog()
    const [first] = await segmentFiles(dir)
    const before = await readFile(join(dir, 'events', first!))
    await appendFile(join(dir, 'events', first!), '{"seq":')
    expect(await openError(dir)).toMatchObject({
      name: 'LogCorruptError',
      file: first,
      line: (await linesOf(dir, first)).length + 1,
      reason: 'line has no trailing newline (incomplete write)',
    })
    // Nothing was cut: the operator decides.
    expect((await readFile(join(dir, 'events', first!))).subarray(0, before.length).equals(before)).toBe(true)
  })
})

describe('recovery and checkpoint.json', () => {
  it('refuses a log that ends before the record checkpoint.json names (records lost), and opens it with repair', async () => {
    const dir = await rotatedLog()
    const checkpoint = JSON.parse(await readFile(checkpointPath(dir), 'utf8')) as Record<string, unknown>
    await writeFile(checkpointPath(dir), JSON.stringify({ ...checkpoint, seq: 1000 }))
    const last = (await segmentFiles(dir)).at(-1)
    expect(await openError(dir)).toMatchObject({
      name: 'LogCorruptError',
      file: last,
      line: 0,
      reason: 'log ends at seq 12, before checkpoint.json seq 1000',
    })
    expect(await openError(dir, true)).toBeUndefined()
    expect(await exists(checkpointPath(dir))).toBe(false)
    expect(await openError(dir)).toBeUndefined()
  })

  it('drops checkpoint.json when a repair cuts at or below the record it names', async () => {
    const dir = await rotatedLog()
    const checkpoint = JSON.parse(await readFile(checkpointPath(dir), 'utf8')) as Record<string, unknown>
    await writeFile(checkpointPath(dir), JSON.stringify({ ...checkpoint, hash: 'f'.repeat(64) }))
    expect(await openError(dir)).toMatchObject({ name: 'LogCorruptError' })
    const { log, report } = await EventLog.open({ dir, maxFileBytes: MAX, repair: true })
    await log.close()
    expect(report.cuts.length).toBeGreaterThan(0)
    expect(await exists(checkpointPath(dir))).toBe(false)
    expect(await openError(dir)).toBeUndefined()
  })
})

describe('recovery right after a rotation', () => {
  it('opens a log that ends exactly at the checkpointed record, with an empty new segment, and appends there', async () => {
    const dir = await rotatedLog()
    const files = await segmentFiles(dir)
    const last = files.at(-1)!
    const lines = await linesOf(dir, last)
    const head = JSON.parse(lines.at(-1)!) as { seq: number; hash: string }
    const size = (await stat(join(dir, 'events', last))).size
    // A crash after the rotation wrote checkpoint.json for the sealed segment and created the next,
    // before the first append to it.
    const index = files.length
    await writeFile(
      checkpointPath(dir),
      JSON.stringify({ seq: head.seq, hash: head.hash, file: index, offset: size }),
    )
    const next = `events-${String(index + 1).padStart(6, '0')}.jsonl`
    await writeFile(join(dir, 'events', next), '')
    const { log, report } = await EventLog.open({ dir, maxFileBytes: MAX })
    expect(report.head).toEqual({ seq: head.seq, hash: head.hash })
    const appended = await log.append(sampleEvent(head.seq + 1))
    await log.close()
    expect(appended.record).toMatchObject({ seq: head.seq + 1, prev_hash: head.hash })
    expect(await linesOf(dir, next)).toHaveLength(1)
  })
})
