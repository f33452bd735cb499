import { readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ChainedRecord } from './chain.js'
import { EventLog, type LogLogger, type OpenLogOptions } from './event-log.js'
import type { LogResumePoint } from './recovery.js'
import { sampleEvent, tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

type Sample = Record<string, unknown>
// One big segment: everything stays in the active one.
const keyed: Pick<OpenLogOptions<Sample>, 'indexKeys' | 'recordTime' | 'maxFileBytes'> = {
  maxFileBytes: 1024 * 1024,
  indexKeys: (r: ChainedRecord<Sample>) => [`s:${r.session_id}`, `e:${r.event}`],
  recordTime: (r: ChainedRecord<Sample>) => Date.parse(String(r.timestamp)),
}
const ACTIVE_INDEX = join('events', 'events-000001.active.idx')

/** Appends events `from..to` (sessions of 3 events each) to `log`. */
async function append(log: EventLog<Sample>, from: number, to: number) {
  for (let i = from; i <= to; i++) await log.append(sampleEvent(i, 'session.touch', Math.ceil(i / 3)))
}

function warnings() {
  const seen: string[] = []
  const logger: LogLogger = { info() {}, warn: (o) => seen.push(JSON.stringify(o)), error() {} }
  return { logger, seen }
}

/** Reopens resuming after `point`; returns the log, the active prefix bytes read and lookups of every session. */
async function reopen(dir: string, point: LogResumePoint, sessions: number, logger?: LogLogger) {
  const { log } = await EventLog.open<Sample>({
    dir,
    ...keyed,
    resumeAfter: point,
    ...(logger ? { logger } : {}),
  })
  const read = await log.activePrefixBytesRead()
  const found: number[][] = []
  for (let s = 1; s <= sessions; s++) {
    const positions = []
    for await (const p of log.lookup(`s:${sampleEvent(1, 'session.touch', s).session_id}`)) positions.push(p)
    found.push((await log.read(positions)).map((r) => r.seq))
  }
  return { log, read, found }
}

/** Rewrites the header line of the active index (not covered by its body checksum) with `change`. */
async function rewriteHeader(
  dir: string,
  change: (header: Record<string, unknown>) => Record<string, unknown>,
) {
  const path = join(dir, ACTIVE_INDEX)
  const text = await readFile(path, 'latin1')
  const end = text.indexOf('\n')
  const header = change(JSON.parse(text.slice(0, end)) as Record<string, unknown>)
  await writeFile(path, Buffer.from(JSON.stringify(header) + text.slice(end), 'latin1'))
}

/** Every session's seqs: session s holds 3s-2, 3s-1, 3s. */
const expected = (sessions: number) =>
  Array.from({ length: sessions }, (_, i) => [3 * i + 1, 3 * i + 2, 3 * i + 3])

describe('the active segment index saved at snapshot time', () => {
  it('lets a start resuming inside the active segment read none of it, with the same lookups', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open<Sample>({ dir, ...keyed })
    await append(log, 1, 60)
    const point = log.resumePoint
    await log.persistActiveIndex()
    await log.close()
    const again = await reopen(dir, point, 20)
    expect(again.read).toBe(0)
    expect(again.found).toEqual(expected(20))
    await again.log.close()
    // Without the file the whole prefix is read, with the same answers.
    await writeFile(join(dir, ACTIVE_INDEX), '')
    const rebuilt = await reopen(dir, point, 20)
    expect(rebuilt.read).toBe(point.offset)
    expect(rebuilt.found).toEqual(expected(20))
    await rebuilt.log.close()
  })

  it('reads only the lines after an older saved index, and ignores what a newer one covers past the point', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open<Sample>({ dir, ...keyed })
    await append(log, 1, 30)
    const older = log.resumePoint
    await log.persistActiveIndex()
    await append(log, 31, 60)
    const newer = log.resumePoint
    await log.close()
    // Saved at seq 30, resuming at 60: the lines of 31..60 are read.
    const gap = await reopen(dir, newer, 20)
    expect(gap.read).toBe(newer.offset - older.offset)
    expect(gap.found).toEqual(expected(20))
    await gap.log.persistActiveIndex()
    await gap.log.close()
    // Saved at seq 60 (e.g. the index was written, then the start used an older snapshot): nothing is
    // read and nothing after the point is indexed twice (the replay adds it).
    const past = await reopen(dir, older, 20)
    expect(past.read).toBe(0)
    expect(past.found).toEqual(expected(20))
    await past.log.close()
  })

  it.each([
    ['truncated', async (dir: string) => truncate(join(dir, ACTIVE_INDEX), 200), /body is|not JSON/],
    [
      'pointing past the segment',
      async (dir: string) => {
        const path = join(dir, ACTIVE_INDEX)
        const text = await readFile(path, 'latin1')
        const end = text.indexOf('\n')
        const header = JSON.parse(text.slice(0, end)) as { bytes: number }
        header.bytes += 1_000_000
        await writeFile(path, Buffer.from(JSON.stringify(header) + text.slice(end), 'latin1'))
      },
      /covers \d+ bytes, the segment has/,
    ],
    [
      'from another log',
      async (dir: string) => {
        const other = await dirs.make()
        const { log } = await EventLog.open<Sample>({ dir: other, ...keyed })
        // Same sizes, other bytes: every hash differs.
        await log.append({ ...sampleEvent(1, 'session.touch'), performer_id: 'caregiver-8' })
        await append(log, 2, 60)
        await log.persistActiveIndex()
        await log.close()
        await writeFile(join(dir, ACTIVE_INDEX), await readFile(join(other, ACTIVE_INDEX)))
      },
      /another log|no line ends/,
    ],
    [
      'whose header puts the fence table past the body',
      async (dir: string) => rewriteHeader(dir, (h) => ({ ...h, fence_offset: Number(h.body_bytes) + 1000 })),
      /fence_offset \d+ is outside the \d+-byte body/,
    ],
    [
      'whose header puts the fence table inside the postings',
      async (dir: string) => rewriteHeader(dir, (h) => ({ ...h, fence_offset: Number(h.fence_offset) - 3 })),
      /postings overrun the fence table/,
    ],
  ])('an index %s is detected, reported and rebuilt from the segment', async (_, damage, reason) => {
    const dir = await dirs.make()
    const { log } = await EventLog.open<Sample>({ dir, ...keyed })
    await append(log, 1, 60)
    const point = log.resumePoint
    await log.persistActiveIndex()
    await log.close()
    expect((await stat(join(dir, ACTIVE_INDEX))).size).toBeGreaterThan(200)
    await damage(dir)
    const { logger, seen } = warnings()
    const again = await reopen(dir, point, 20, logger)
    expect(again.read).toBe(point.offset)
    expect(again.found).toEqual(expected(20))
    expect(seen.join('\n')).toMatch(reason)
    await again.log.close()
  })

  it('is removed when its segment is sealed', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open<Sample>({ dir, ...keyed, maxFileBytes: 4000 })
    await append(log, 1, 3)
    await log.persistActiveIndex()
    await expect(stat(join(dir, ACTIVE_INDEX))).resolves.toBeDefined()
    await append(log, 4, 30)
    await log.close()
    await expect(stat(join(dir, ACTIVE_INDEX))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
