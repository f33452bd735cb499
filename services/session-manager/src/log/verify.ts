import { performance } from 'node:perf_hooks'
import { type ChainedRecord, decodeLine, GENESIS_HASH } from './chain.js'
import { type LogFileSystem, nodeFileSystem } from './file-system.js'
import { scanLines } from './line-scanner.js'
import type { LogHead } from './recovery.js'
import { eventsDirOf, listSegments } from './segments.js'

/**
 * Result of `verifyLog`. `ok` is false when `problem` is set; counts cover the records before it.
 *
 * @example
 * const report = await verifyLog(dir)
 * if (!report.ok) console.error(`${report.problem.file}:${report.problem.line}: ${report.problem.reason}`)
 */
export type VerifyReport = VerifyCounts & ({ ok: true } | { ok: false; problem: VerifyProblem })

/**
 * Counts gathered by `verifyLog`.
 *
 * @example
 * console.log(`${report.records} events, ${report.sessions} sessions`)
 */
export interface VerifyCounts {
  files: number
  records: number
  bytes: number
  sessions: number
  events: Record<string, number>
  head: LogHead
  durationMs: number
}

/**
 * The first problem `verifyLog` found: segment file name, 1-based line, reason.
 *
 * @example
 * const where = `${problem.file}:${problem.line}`
 */
export interface VerifyProblem {
  file: string
  line: number
  reason: string
}

/**
 * Options of `verifyLog`.
 *
 * @example
 * await verifyLog(dir, { onProgress: (done, total) => bar.update(done / total) })
 */
export interface VerifyOptions {
  onProgress?(bytes: number, totalBytes: number): void
  /** A head published elsewhere (e.g. an audit anchor): also detects lines cut off at a line boundary. */
  expectedHead?: LogHead
  fs?: LogFileSystem
}

const SESSION_STARTED = 1
const SESSION_ENDED = 2

/**
 * Streams the whole log in constant memory (plus one small entry per session id) and checks every
 * line: JSON, hash, `prev_hash` chain, `seq` continuity across files, non-decreasing `timestamp`, at
 * most one `session.start` and one `session.end` per `session_id`, the end after the start, and a
 * final newline. Stops at the first problem. Safe to run next to a live writer (a line still being
 * written shows up as a missing newline).
 *
 * @example
 * const report = await verifyLog('/var/lib/care')
 * process.exitCode = report.ok ? 0 : 1
 */
export async function verifyLog(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now()
  const fs = options.fs ?? nodeFileSystem
  const segments = await listSegments(fs, eventsDirOf(dir))
  let totalBytes = 0
  for (const segment of segments) totalBytes += (await fs.stat(segment.path)).size
  const counts: VerifyCounts = {
    files: segments.length,
    records: 0,
    bytes: 0,
    sessions: 0,
    events: {},
    head: { seq: 0, hash: GENESIS_HASH },
    durationMs: 0,
  }
  const sessions = new Map<string, number>()
  let seq = 0
  let hash = GENESIS_HASH
  let lastTimestamp = ''
  // The most frequent kind gets a plain counter: a keyed object update per line shows in profiles.
  let touches = 0
  let problem: VerifyProblem | undefined
  const onProgress = options.onProgress
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
    if (typeof event !== 'string' || typeof sessionId !== 'string') return 'event or session_id is missing'
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
          if (kind === 'session.touch') touches++
          else counts.events[kind] = (counts.events[kind] ?? 0) + 1
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
  if (touches > 0) counts.events['session.touch'] = touches
  counts.records = seq
  counts.sessions = sessions.size
  counts.head = { seq, hash }
  counts.durationMs = Math.round(performance.now() - started)
  return problem ? { ...counts, ok: false, problem } : { ...counts, ok: true }
}
