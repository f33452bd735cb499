import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { scanLog } from '@care/event-log'
import type { StoredEvent } from '../store/event-store.js'
import { type AuditSource, isPositioned } from './audit-source.js'

/**
 * One line of a merged session timeline: a lifecycle event from the session log or a record from a
 * worker log, with where it came from (`seq` in the log, or file and line of the worker log).
 *
 * @example
 * for (const entry of timeline) console.log(entry.timestamp, entry.source, entry.event)
 */
export interface TimelineEntry {
  timestamp: string
  source: string
  event: string
  session_id: string
  kind: 'lifecycle' | 'worker'
  /** Lifecycle: the log `seq`. Worker: the record's `seq` in a worker event log, or the 1-based line of a plain JSONL `file`. */
  at: { seq: number } | { file: string; line: number }
  record: Record<string, unknown>
}

/**
 * A worker log line that is not a JSON object. File and 1-based line say which.
 *
 * @example
 * if (err instanceof WorkerLogError) console.error(`${err.file}:${err.line}: ${err.reason}`)
 */
export class WorkerLogError extends Error {
  override readonly name = 'WorkerLogError'
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`)
  }
}

/**
 * A session's lifecycle events in log (= chronological) order, by one scan of the source; empty when
 * the session is unknown. The HTTP service answers the same question from its in-memory index
 * without scanning; the CLI has no index, and one streaming scan is cheap next to starting a server.
 *
 * @example
 * const events = await sessionEvents(logAuditSource(dir), sessionId)
 */
export async function sessionEvents(source: AuditSource, sessionId: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = []
  if (isPositioned(source)) {
    await source.visitPositions((event) => {
      if (event.session_id === sessionId) events.push(event)
    })
  } else {
    for await (const event of source.scan()) if (event.session_id === sessionId) events.push(event)
  }
  return events
}

/**
 * The records of one session in a worker's log, streamed. `path` is either the worker's data directory
 * (its `@care/event-log`, as the sample worker writes it: every line hash- and chain-checked, a bad one
 * throws `LogCorruptError`; `line` is the record's `seq`) or a plain JSONL file (older workers: blank
 * lines are ignored, a line that is not a JSON object throws `WorkerLogError`; `line` is the line).
 *
 * @example
 * const records = await readWorkerRecords('.care-data/worker', sessionId)
 */
export async function readWorkerRecords(
  path: string,
  sessionId: string,
): Promise<{ line: number; record: Record<string, unknown> }[]> {
  const found: { line: number; record: Record<string, unknown> }[] = []
  if ((await stat(path)).isDirectory()) {
    await scanLog(path, (record) => {
      if (record.session_id === sessionId) found.push({ line: record.seq, record })
    })
    return found
  }
  const file = path
  const stream = createReadStream(file, { encoding: 'utf8' })
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve())
    stream.once('error', reject)
  })
  await opened
  let line = 0
  for await (const text of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++
    if (text.trim() === '') continue
    // Cheap pre-filter: a line that does not mention the id cannot belong to the session.
    if (!text.includes(sessionId)) continue
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new WorkerLogError(file, line, 'line is not valid JSON')
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new WorkerLogError(file, line, 'line is not a JSON object')
    }
    const record = parsed as Record<string, unknown>
    if (record.session_id === sessionId) found.push({ line, record })
  }
  return found
}

const PHASE_START = 0
const PHASE_DURING = 1
const PHASE_END = 2

function phaseOf(entry: TimelineEntry): number {
  if (entry.kind !== 'lifecycle') return PHASE_DURING
  if (entry.event === 'session.start') return PHASE_START
  return entry.event === 'session.end' ? PHASE_END : PHASE_DURING
}

/**
 * Merges a session's lifecycle events and worker records into one chronological timeline. The order
 * is total and stable: by timestamp (as a date); at equal timestamps `session.start` first and
 * `session.end` last (nothing of a session happens outside its window), then lifecycle events before
 * worker records, then log `seq`, then the worker log's position in `workerLogs` and its line number.
 *
 * @example
 * const timeline = mergeTimeline(events, [{ file: 'worker.jsonl', records }])
 */
export function mergeTimeline(
  lifecycle: readonly StoredEvent[],
  workerLogs: readonly {
    file: string
    records: readonly { line: number; record: Record<string, unknown> }[]
  }[],
): TimelineEntry[] {
  const keyed: { entry: TimelineEntry; time: number; log: number; order: number }[] = []
  for (const event of lifecycle) {
    keyed.push({
      entry: {
        timestamp: event.timestamp,
        source: event.source,
        event: event.event,
        session_id: event.session_id,
        kind: 'lifecycle',
        at: { seq: event.seq },
        record: event as unknown as Record<string, unknown>,
      },
      time: Date.parse(event.timestamp),
      log: -1,
      order: event.seq,
    })
  }
  for (const [log, { file, records }] of workerLogs.entries()) {
    for (const { line, record } of records) {
      const timestamp = typeof record.timestamp === 'string' ? record.timestamp : ''
      keyed.push({
        entry: {
          timestamp,
          source: typeof record.source === 'string' ? record.source : 'worker',
          event: typeof record.event === 'string' ? record.event : 'record',
          session_id: String(record.session_id),
          kind: 'worker',
          at: { file, line },
          record,
        },
        // A record without a usable time sorts last rather than breaking the order.
        time: Number.isNaN(Date.parse(timestamp)) ? Number.POSITIVE_INFINITY : Date.parse(timestamp),
        log,
        order: line,
      })
    }
  }
  keyed.sort(
    (a, b) => a.time - b.time || phaseOf(a.entry) - phaseOf(b.entry) || a.log - b.log || a.order - b.order,
  )
  return keyed.map((k) => k.entry)
}

const DETAIL_FIELDS = [
  'user_id',
  'performer_id',
  'origin',
  'reason',
  'input_source',
  'input_record_id',
  'idle_timeout_ms',
  'max_duration_ms',
] as const

/**
 * One human-readable line for a timeline entry: time, offset from the first entry, source, event and
 * the few fields a reader needs (who, why, what the worker derived).
 *
 * @example
 * for (const entry of timeline) console.log(formatTimelineEntry(entry, timeline[0]?.timestamp))
 */
export function formatTimelineEntry(entry: TimelineEntry, firstTimestamp?: string): string {
  const offset =
    firstTimestamp === undefined
      ? ''
      : `+${((Date.parse(entry.timestamp) - Date.parse(firstTimestamp)) / 1000).toFixed(3)}s`
  const details: string[] = []
  for (const field of DETAIL_FIELDS) {
    const value = entry.record[field]
    if (value !== undefined) details.push(`${field}=${String(value)}`)
  }
  const output = entry.record.output as { label?: unknown } | undefined
  if (output && typeof output === 'object' && output.label !== undefined)
    details.push(`label=${String(output.label)}`)
  const annotations = entry.record.annotations as Record<string, unknown> | undefined
  if (annotations && typeof annotations === 'object') {
    details.push(
      `annotations=${Object.entries(annotations)
        .map(([k, v]) => `${k}:${String(v)}`)
        .join(',')}`,
    )
  }
  const where = 'seq' in entry.at ? `#${entry.at.seq}` : `${entry.at.file.split('/').at(-1)}:${entry.at.line}`
  return [
    entry.timestamp,
    offset.padStart(10),
    entry.source.padEnd(16),
    entry.event.padEnd(15),
    details.join(' '),
    `(${where})`,
  ]
    .filter((part) => part !== '')
    .join('  ')
}
