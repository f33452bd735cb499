import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { type ChainedRecord, decodeLine, encodeRecord, GENESIS_HASH } from './chain.js'
import { nodeFileSystem } from './file-system.js'
import { scanLines } from './line-scanner.js'
import type { LogHead } from './recovery.js'
import { eventsDirOf, listSegments, segmentName } from './segments.js'
import { sampleEvent, sampleRules, tempDirs } from './testing/log-fixtures.js'
import {
  type VerifyCounts,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
  verifyLog,
} from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

// The single-pass verifyLog as it was before chunks and workers, kept as the oracle: the chunked,
// parallel one must report the same first problem, counts and head for any log.
const SESSION_STARTED = 1
const SESSION_ENDED = 2

async function referenceVerify(dir: string, options: { expectedHead?: LogHead } = {}): Promise<VerifyReport> {
  const started = performance.now()
  const fs = nodeFileSystem
  const segments = await listSegments(fs, eventsDirOf(dir))
  let totalBytes = 0
  for (const segment of segments) totalBytes += (await fs.stat(segment.path)).size
  const counts: VerifyCounts = {
    files: segments.length,
    records: 0,
    bytes: 0,
    keys: 0,
    events: {},
    head: { seq: 0, hash: GENESIS_HASH },
    durationMs: 0,
  }
  const sessions = new Map<string, number>()
  let seq = 0
  let hash = GENESIS_HASH
  let lastTimestamp = ''
  let problem: VerifyProblem | undefined
  const onProgress = undefined as ((bytes: number, total: number) => void) | undefined
  const expected = options.expectedHead

  const check = (record: ChainedRecord): string | undefined => {
    if (record.seq !== seq + 1) return `seq is ${record.seq}, expected ${seq + 1}`
    if (record.prev_hash !== hash) return "prev_hash does not match the previous line's hash"
    const timestamp = record.timestamp
    if (typeof timestamp !== 'string') return 'timestamp is missing'
    // ISO-8601 UTC with milliseconds sorts as text; anything else is compared as a date.
    if (
      timestamp.length === 24 &&
      lastTimestamp.length === 24 &&
      timestamp.endsWith('Z') &&
      lastTimestamp.endsWith('Z')
    ) {
      if (timestamp < lastTimestamp) return `timestamp ${timestamp} is before the previous ${lastTimestamp}`
    } else {
      const time = Date.parse(timestamp)
      if (Number.isNaN(time)) return `timestamp ${timestamp} is not a date`
      if (lastTimestamp !== '' && time < Date.parse(lastTimestamp)) {
        return `timestamp ${timestamp} is before the previous ${lastTimestamp}`
      }
    }
    const event = record.event
    const sessionId = record.session_id
    if (typeof event !== 'string') return 'event is missing'
    if (typeof sessionId !== 'string') return 'session_id is missing'
    if (event === 'session.start') {
      if (sessions.has(sessionId)) return `second session.start for session ${sessionId}`
      sessions.set(sessionId, SESSION_STARTED)
    } else if (event === 'session.end') {
      const state = sessions.get(sessionId)
      if (state === undefined) return `session.end before session.start for session ${sessionId}`
      if (state === SESSION_ENDED) return `second session.end for session ${sessionId}`
      sessions.set(sessionId, SESSION_ENDED)
    }
    if (expected && record.seq === expected.seq && record.hash !== expected.hash) {
      return `hash differs from the expected head at seq ${expected.seq}`
    }
    lastTimestamp = timestamp
    return undefined
  }

  for (const [i, segment] of segments.entries()) {
    if (segment.index !== i + 1) {
      problem = {
        file: segment.name,
        line: 1,
        reason: `segment events-${String(i + 1).padStart(6, '0')}.jsonl is missing`,
      }
      break
    }
    const handle = await fs.open(segment.path, 'read')
    let line = 0
    try {
      const result = await scanLines(
        handle,
        (buf, start, end) => {
          line++
          const record = decodeLine(buf, start, end)
          const reason = typeof record === 'string' ? record : check(record)
          if (reason !== undefined) {
            problem = { file: segment.name, line, reason }
            return false
          }
          const ok = record as ChainedRecord
          seq = ok.seq
          hash = ok.hash
          const kind = ok.event as string
          counts.events[kind] = (counts.events[kind] ?? 0) + 1
          return true
        },
        onProgress
          ? (bytes) => {
              counts.bytes += bytes
              onProgress(counts.bytes, totalBytes)
            }
          : (bytes) => {
              counts.bytes += bytes
            },
      )
      if (!problem && result.trailing > 0) {
        problem = {
          file: segment.name,
          line: line + 1,
          reason: 'last line has no trailing newline (cut off, or being written)',
        }
      }
    } finally {
      await handle.close()
    }
    if (problem) break
  }
  if (!problem && expected && expected.seq > seq) {
    const last = segments.at(-1)
    problem = {
      file: last?.name ?? 'events-000001.jsonl',
      line: 0,
      reason: `log ends at seq ${seq}, but the expected head is seq ${expected.seq} (${expected.hash})`,
    }
  }
  counts.records = seq
  counts.keys = sessions.size
  counts.head = { seq, hash }
  counts.durationMs = Math.round(performance.now() - started)
  return problem ? { ...counts, ok: false, problem } : { ...counts, ok: true }
}

type Step =
  | { kind: 'start' | 'touch' | 'end'; pick: number }
  | {
      kind: 'duplicateStart' | 'endUnknown' | 'endTwice' | 'backwards' | 'noSession' | 'oddTimestamp'
      pick: number
    }

type LineEdit =
  | { kind: 'none' }
  | { kind: 'edit' | 'delete' | 'duplicate' | 'swap' | 'garbage' | 'truncate' | 'dropFile'; at: number }

/** Events from a script of steps: mostly well-formed lifecycles, with the anomalies verifyLog must catch. */
function eventsOf(steps: Step[]): Record<string, unknown>[] {
  const open: number[] = []
  const ended: number[] = []
  let next = 1
  const events: Record<string, unknown>[] = []
  for (const [i, step] of steps.entries()) {
    const n = i + 10
    const session = (id: number) => {
      const event = sampleEvent(
        n,
        step.kind === 'end' || step.kind === 'endTwice' ? 'session.end' : 'session.touch',
        id,
      )
      // Some ids are not ASCII, which the session table stores differently.
      if (id % 5 === 0) event.session_id = `sess-ä-${id}`
      return event
    }
    const pickOf = (list: number[]) => list[step.pick % list.length] as number
    switch (step.kind) {
      case 'start': {
        const id = next++
        open.push(id)
        events.push({
          ...session(id),
          ...sampleEvent(n, 'session.start', id),
          session_id: session(id).session_id,
        })
        break
      }
      case 'touch':
        if (open.length > 0) events.push(session(pickOf(open)))
        break
      case 'end':
        if (open.length > 0) {
          const id = pickOf(open)
          open.splice(open.indexOf(id), 1)
          ended.push(id)
          events.push(session(id))
        }
        break
      case 'duplicateStart': {
        const all = [...open, ...ended]
        if (all.length > 0) {
          const id = pickOf(all)
          events.push({ ...sampleEvent(n, 'session.start', id), session_id: session(id).session_id })
        }
        break
      }
      case 'endUnknown':
        events.push({ ...sampleEvent(n, 'session.end', 100_000 + n), session_id: `never-${n}` })
        break
      case 'endTwice':
        if (ended.length > 0) events.push(session(pickOf(ended)))
        break
      case 'backwards':
        events.push({ ...session(pickOf(open.length > 0 ? open : [1])), timestamp: sampleEvent(1).timestamp })
        break
      case 'noSession': {
        const { session_id: _id, ...rest } = session(1)
        events.push(rest)
        break
      }
      case 'oddTimestamp':
        events.push({
          ...session(pickOf(open.length > 0 ? open : [1])),
          timestamp: `2026-03-0${1 + (step.pick % 3)}T23:59:59Z`,
        })
        break
    }
  }
  return events
}

/** Chains `events` into segment files of `perFile` lines, then applies `edit` to the lines. */
async function writeLog(events: Record<string, unknown>[], perFile: number, edit: LineEdit): Promise<string> {
  const dir = await dirs.make()
  let prev = GENESIS_HASH
  let lines = events.map((event, i) => {
    const { record, line } = encodeRecord(event, i + 1, prev)
    prev = record.hash
    return line.toString('utf8')
  })
  const at = edit.kind === 'none' ? 0 : edit.at % Math.max(1, lines.length)
  let tailCut = 0
  switch (lines.length === 0 ? 'none' : edit.kind) {
    case 'edit':
      lines[at] = (lines[at] as string).replace('human', 'robot')
      break
    case 'delete':
      lines = lines.filter((_, i) => i !== at)
      break
    case 'duplicate':
      lines.splice(at, 0, lines[at] as string)
      break
    case 'swap':
      if (at + 1 < lines.length) [lines[at], lines[at + 1]] = [lines[at + 1] as string, lines[at] as string]
      break
    case 'garbage':
      lines.splice(at, 0, at % 2 === 0 ? 'not json\n' : '[1,2]\n')
      break
    case 'truncate':
      tailCut = 1 + (at % 40)
      break
  }
  const { mkdir } = await import('node:fs/promises')
  await mkdir(join(dir, 'events'), { recursive: true })
  const files = Math.max(1, Math.ceil(lines.length / perFile))
  for (let f = 0; f < files; f++) {
    if (edit.kind === 'dropFile' && files > 2 && f === 1 + (at % (files - 1))) continue
    let text = lines.slice(f * perFile, (f + 1) * perFile).join('')
    if (f === files - 1 && tailCut > 0) text = text.slice(0, Math.max(0, text.length - tailCut))
    await writeFile(join(dir, 'events', segmentName(f + 1)), text)
  }
  return dir
}

const steps = fc.array(
  fc.oneof(
    { weight: 20, arbitrary: fc.record({ kind: fc.constantFrom('start', 'touch', 'end'), pick: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constantFrom(
          'duplicateStart',
          'endUnknown',
          'endTwice',
          'backwards',
          'noSession',
          'oddTimestamp',
        ),
        pick: fc.nat(),
      }),
    },
  ),
  { minLength: 1, maxLength: 120 },
) as fc.Arbitrary<Step[]>

const lineEdits = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' }) },
  {
    weight: 7,
    arbitrary: fc.record({
      kind: fc.constantFrom('edit', 'delete', 'duplicate', 'swap', 'garbage', 'truncate', 'dropFile'),
      at: fc.nat(),
    }),
  },
) as fc.Arbitrary<LineEdit>

/** What must not depend on how the log was read (bytes read ahead and the duration do). */
function comparable(report: VerifyReport) {
  const { bytes: _bytes, durationMs: _ms, ...rest } = report
  return rest
}

type Verify = (dir: string, options?: VerifyOptions) => Promise<VerifyReport>

async function expectSameAsReference(verify: Verify, options: VerifyOptions[], runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      steps,
      lineEdits,
      fc.integer({ min: 3, max: 60 }),
      fc.nat(),
      async (script, edit, perFile, headAt) => {
        const events = eventsOf(script)
        const dir = await writeLog(events, perFile, edit)
        const clean = await referenceVerify(dir)
        // Now and then also an expected head: the real one, or a wrong hash at some seq.
        const heads: (LogHead | undefined)[] = [undefined]
        if (headAt % 3 === 1) heads.push(clean.head)
        if (headAt % 3 === 2)
          heads.push({ seq: 1 + (headAt % Math.max(1, clean.records + 2)), hash: 'f'.repeat(64) })
        for (const expectedHead of heads) {
          const expected = comparable(await referenceVerify(dir, expectedHead ? { expectedHead } : {}))
          for (const option of options) {
            const report = await verify(dir, {
              rules: sampleRules,
              ...option,
              ...(expectedHead ? { expectedHead } : {}),
            })
            expect(comparable(report), JSON.stringify(option)).toEqual(expected)
          }
        }
      },
    ),
    { numRuns: runs },
  )
}

describe('verifyLog in chunks', () => {
  it('reports the same first problem, counts and head as a single pass, for any chunk size', async () => {
    await expectSameAsReference(
      verifyLog,
      [{ chunkBytes: 1 }, { chunkBytes: 700 }, { chunkBytes: 4096 }, {}],
      // A mutation run (CARE_MUTATION_RUN=1) runs this once per mutant: fewer logs there.
      process.env.CARE_MUTATION_RUN === '1' ? 15 : 120,
    )
  }, 60_000)

  it('reports the whole log read, in order, to onProgress', async () => {
    const dir = await writeLog(
      eventsOf([
        { kind: 'start', pick: 0 },
        { kind: 'touch', pick: 0 },
      ]),
      1,
      { kind: 'none' },
    )
    const progress: number[] = []
    const report = await verifyLog(dir, {
      chunkBytes: 64,
      onProgress: (done, total) => progress.push(done, total),
    })
    expect(report.ok).toBe(true)
    expect(progress.at(-2)).toBe(report.bytes)
    expect(progress.at(-1)).toBe(report.bytes)
  })

  it("reports checkRecord's reason at its line, after the chain checks of that line", async () => {
    const events = eventsOf(Array.from({ length: 40 }, (_, i) => ({ kind: 'start' as const, pick: i })))
    const dir = await writeLog(events, 15, { kind: 'none' })
    const seen: number[] = []
    const checkRecord = (record: ChainedRecord) => {
      seen.push(record.seq)
      return record.seq === 23 ? `seq ${record.seq} is unlucky` : undefined
    }
    expect(await verifyLog(dir, { checkRecord, chunkBytes: 1000 })).toMatchObject({
      ok: false,
      records: 22,
      problem: { file: segmentName(2), line: 8, reason: 'seq 23 is unlucky' },
    })
    expect(seen).toEqual(Array.from({ length: 23 }, (_, i) => i + 1))
    // A broken line is reported for what breaks it, not for what checkRecord says.
    const edited = await writeLog(events, 15, { kind: 'edit', at: 22 })
    expect(await verifyLog(edited, { checkRecord })).toMatchObject({ problem: { line: 8, reason: /hash/ } })
  })

  it('loads checkRecord from checkRecordModule and refuses both at once', async () => {
    const dir = await writeLog(
      eventsOf([
        { kind: 'start', pick: 0 },
        { kind: 'start', pick: 0 },
      ]),
      9,
      { kind: 'none' },
    )
    const module = join(dir, 'check.mjs')
    await writeFile(module, "export function checkRecord(r) { return r.seq === 2 ? 'second' : undefined }\n")
    expect(await verifyLog(dir, { checkRecordModule: module })).toMatchObject({
      problem: { line: 2, reason: 'second' },
    })
    await expect(verifyLog(dir, { checkRecordModule: module, checkRecord: () => undefined })).rejects.toThrow(
      TypeError,
    )
  })
})

describe('verifyLog on worker threads (built dist)', () => {
  const dist = new URL('../dist/verify.js', import.meta.url)

  it('reports the same as a single pass with one or two workers', async () => {
    const { verifyLog: built } = (await import(dist.href)) as { verifyLog: Verify }
    await expectSameAsReference(
      built,
      [
        { workers: 1, chunkBytes: 900 },
        { workers: 2, chunkBytes: 300 },
      ],
      15,
    )
  }, 90_000)

  it('runs checkRecordModule in a worker thread', async () => {
    const { verifyLog: built } = (await import(dist.href)) as { verifyLog: Verify }
    const events = eventsOf(Array.from({ length: 30 }, (_, i) => ({ kind: 'start' as const, pick: i })))
    const dir = await writeLog(events, 100, { kind: 'none' })
    const module = join(dir, 'check.mjs')
    await writeFile(
      module,
      "import { threadId } from 'node:worker_threads'\n" +
        'export function checkRecord(r) { return r.seq === 30 ? "thread " + threadId : undefined }\n',
    )
    const report = await built(dir, { workers: 1, checkRecordModule: pathToFileURL(module) })
    expect(report).toMatchObject({ ok: false, records: 29, problem: { line: 30, reason: /^thread [1-9]/ } })
  })
})
