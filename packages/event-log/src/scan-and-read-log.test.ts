import { createHash } from 'node:crypto'
import { appendFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'
import { type ChainedRecord, GENESIS_HASH } from './chain.js'
import { LogCorruptError } from './errors.js'
import { EventLog } from './event-log.js'
import { readLog } from './read-log.js'
import type { LogPosition } from './recovery.js'
import { type LineLocation, scanLog, scanLogLines } from './scan-log.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'

// readLog and scanLog: the two readers of a live log (export, replay, indexing) that check each
// line's hash, seq and prev_hash themselves, without recovery.
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

/** A line with the same content as `record` but `changes` applied, re-hashed so its own hash holds. */
function rehashed(record: Record<string, unknown>, changes: Record<string, unknown>): string {
  const { hash: _, ...rest } = { ...record, ...changes }
  return JSON.stringify({ ...rest, hash: createHash('sha256').update(canonicalJson(rest)).digest('hex') })
}

async function replaceLine(dir: string, index: number, make: (record: Record<string, unknown>) => string) {
  const lines = await linesOf(dir)
  lines[index] = make(JSON.parse(lines[index]!) as Record<string, unknown>)
  await writeFile(join(dir, 'events', SEGMENT), `${lines.join('\n')}\n`)
}

async function readAll(dir: string): Promise<{ seqs: number[]; error: unknown }> {
  const seqs: number[] = []
  try {
    for await (const { record } of readLog(dir)) seqs.push(record.seq)
    return { seqs, error: undefined }
  } catch (error) {
    return { seqs, error }
  }
}

async function scanAll(dir: string): Promise<{ seqs: number[]; error: unknown }> {
  const seqs: number[] = []
  try {
    await scanLog(dir, (record) => seqs.push(record.seq))
    return { seqs, error: undefined }
  } catch (error) {
    return { seqs, error }
  }
}

const readers = [
  ['readLog', readAll],
  ['scanLog', scanAll],
] as const

describe.each(readers)('%s', (_name, readAllOf) => {
  it('stops at a line whose seq does not follow, naming file, line and why', async () => {
    const dir = await writeLog(4)
    await replaceLine(dir, 2, (r) => rehashed(r, { seq: 4 }))
    const { seqs, error } = await readAllOf(dir)
    expect(seqs).toEqual([1, 2])
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: SEGMENT, line: 3, reason: 'seq is 4, expected 3' })
  })

  it("stops at a line whose prev_hash is not the previous line's hash", async () => {
    const dir = await writeLog(4)
    await replaceLine(dir, 2, (r) => rehashed(r, { prev_hash: 'f'.repeat(64) }))
    const { seqs, error } = await readAllOf(dir)
    expect(seqs).toEqual([1, 2])
    expect(error).toMatchObject({
      file: SEGMENT,
      line: 3,
      reason: "prev_hash does not match the previous line's hash",
    })
  })

  it('stops at a line whose hash fails, and at a first line that does not start the chain', async () => {
    const dir = await writeLog(3)
    await replaceLine(dir, 1, (r) => JSON.stringify({ ...r, user_id: 'someone-else' }))
    expect(await readAllOf(dir)).toMatchObject({
      seqs: [1],
      error: { file: SEGMENT, line: 2, reason: 'hash does not match the line content' },
    })
    const genesis = await writeLog(2)
    await replaceLine(genesis, 0, (r) => rehashed(r, { prev_hash: 'e'.repeat(64) }))
    expect(await readAllOf(genesis)).toMatchObject({ seqs: [], error: { line: 1 } })
  })

  it('reads every segment in order and skips a final line still being written', async () => {
    const dir = await writeLog(6, 1300)
    const files = await segmentFiles(dir)
    expect(files.length).toBeGreaterThan(1)
    await appendFile(join(dir, 'events', files.at(-1)!), '{"seq":7,"prev')
    expect(await readAllOf(dir)).toEqual({ seqs: [1, 2, 3, 4, 5, 6], error: undefined })
  })

  it('refuses a log with a segment missing before another', async () => {
    const dir = await writeLog(6, 1300)
    const files = await segmentFiles(dir)
    await rm(join(dir, 'events', files[1]!))
    const { seqs, error } = await readAllOf(dir)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: files[2], line: 1 })
    expect(seqs.length).toBeLessThan(6)
  })
})

describe('a segment missing before another', () => {
  it('is named as missing by readLog, not reported as a broken chain', async () => {
    const dir = await writeLog(6, 1300)
    const files = await segmentFiles(dir)
    await rm(join(dir, 'events', files[1]!))
    const { error } = await readAll(dir)
    expect(error).toMatchObject({ file: files[2], line: 1, reason: 'a segment before this one is missing' })
    expect((error as Error).message).toContain(join(dir, 'events', files[2]!))
  })

  it('is named by scanLogLines, which checks no line itself, before it visits that segment', async () => {
    const dir = await writeLog(6, 1300)
    const files = await segmentFiles(dir)
    await rm(join(dir, 'events', files[1]!))
    const visited: string[] = []
    const error = await scanLogLines(dir, (_buf, _start, _end, at) => {
      visited.push(at.file)
      return true
    }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogCorruptError)
    expect(error).toMatchObject({ file: files[2], line: 1, reason: `segment ${files[1]} is missing` })
    expect((error as Error).message).toContain(join(dir, 'events', files[2]!))
    expect(new Set(visited)).toEqual(new Set([files[0]]))
  })

  it('gives scanLog the path of the bad file in its message', async () => {
    const dir = await writeLog(3)
    await replaceLine(dir, 1, (r) => JSON.stringify({ ...r, user_id: 'someone-else' }))
    const { error } = await scanAll(dir)
    expect((error as Error).message).toContain(`${join(dir, 'events', SEGMENT)} line 2`)
  })
})

describe('scanLog', () => {
  it('hands over each record with a position that reads it back, and resolves with the head', async () => {
    const dir = await writeLog(5, 1300)
    const seen: { record: ChainedRecord; position: LogPosition }[] = []
    const head = await scanLog(dir, (record, position) => seen.push({ record, position }))
    expect((await segmentFiles(dir)).length).toBeGreaterThan(1)
    expect(seen.map((s) => s.record.seq)).toEqual([1, 2, 3, 4, 5])
    expect(head).toEqual({ seq: 5, hash: seen.at(-1)!.record.hash })
    const { log } = await EventLog.open({ dir })
    expect(await log.read(seen.map((s) => s.position))).toEqual(seen.map((s) => s.record))
    await log.close()
  })

  it('resolves with the genesis head for an empty log', async () => {
    const dir = await dirs.make()
    expect(await scanLog(dir, () => expect.unreachable())).toEqual({ seq: 0, hash: GENESIS_HASH })
  })
})

describe('scanLogLines', () => {
  it('visits each complete line with its file, segment, line number and offset, and stops when told', async () => {
    const dir = await writeLog(5, 1300)
    const files = await segmentFiles(dir)
    const visited: LineLocation[] = []
    const texts: string[] = []
    await scanLogLines(dir, (buf, start, end, at) => {
      visited.push(at)
      texts.push(buf.toString('utf8', start, end))
      return true
    })
    const expected: LineLocation[] = []
    const expectedTexts: string[] = []
    for (const [i, file] of files.entries()) {
      let offset = 0
      for (const [n, text] of (await linesOf(dir, file)).entries()) {
        expected.push({ file, segment: i + 1, line: n + 1, offset })
        expectedTexts.push(text)
        offset += Buffer.byteLength(text) + 1
      }
    }
    expect(visited).toEqual(expected)
    expect(texts).toEqual(expectedTexts)

    let calls = 0
    await scanLogLines(dir, () => ++calls < 2)
    expect(calls).toBe(2)
  })
})
