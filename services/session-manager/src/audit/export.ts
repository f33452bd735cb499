import { createHash } from 'node:crypto'
import { GENESIS_HASH, type LogHead, type LogPosition } from '../log/index.js'
import type { StoredEvent } from '../store/event-store.js'
import { type AuditSource, isPositioned } from './audit-source.js'
import { END_REASONS, type ExportFilters } from './export-filters.js'
import { IDENTITY_FIELDS, PSEUDONYM_PREFIX, type Pseudonymizer } from './pseudonymize.js'

/**
 * Identifies one exported record in a manifest: where it sits in the chain and what it is.
 *
 * @example
 * const ref: ExportedRecordRef = { seq: 1, hash: 'ab…', record_id: '01J…', session_id: '01J…', timestamp: '2026-03-01T12:00:00.000Z' }
 */
export interface ExportedRecordRef {
  seq: number
  hash: string
  record_id: string
  session_id: string
  timestamp: string
}

/**
 * Written beside every export (`<out>.manifest.json`, or the HTTP trailer line) so a dataset can be
 * traced back to the log it came from: the filters, what came out, and the chain head (`source_head`)
 * the export was taken at. Every exported line keeps its `seq` and `hash`, so each record can be
 * checked against that log; with pseudonymisation the hashes refer to the original records.
 *
 * @example
 * const manifest: ExportManifest = JSON.parse(await readFile('sessions.jsonl.manifest.json', 'utf8'))
 * console.log(`${manifest.counts.events} events up to seq ${manifest.source_head.seq}`)
 */
export interface ExportManifest {
  kind: 'care.session-export'
  manifest_version: 1
  schema_version: '1.1'
  created_at: string
  filters: ExportFilters
  order: 'sessions in start order; each session contiguous, its events in log order'
  pseudonymized: { algorithm: 'HMAC-SHA256'; prefix: string; fields: string[]; key_id: string } | null
  counts: { sessions: number; events: number; by_event: Record<string, number>; scanned: number }
  first_record: ExportedRecordRef | null
  last_record: ExportedRecordRef | null
  source_head: LogHead
  output: { bytes: number; sha256: string }
}

/**
 * Progress of `runExport`: `scan` is the pass over the whole log (`bytes` when the source knows
 * positions), `write` the pass that writes the `total` selected events.
 *
 * @example
 * onProgress: (p) => bar.update(p.phase === 'write' ? p.events / (p.total ?? 1) : p.bytes ?? 0)
 */
export interface ExportProgress {
  phase: 'scan' | 'write'
  events: number
  bytes?: number
  total?: number
}

/**
 * Options of `runExport`.
 *
 * @example
 * await runExport(source, filters, write, { pseudonymizer, onProgress: (p) => bar.update(p) })
 */
export interface ExportOptions {
  pseudonymizer?: Pseudonymizer
  onProgress?(progress: ExportProgress): void
  /** Clock for `created_at`. */
  now?: () => Date
  /** Events buffered per re-scan for sources without positions (default 20,000). */
  windowEvents?: number
}

/** Receives the export in chunks of whole lines; return a promise to apply backpressure. */
export type ExportSink = (chunk: string) => void | Promise<void>

const EVENT_KINDS = ['session.start', 'session.touch', 'session.end'] as const
const OTHER_KIND = EVENT_KINDS.length
const CHUNK_CHARS = 64 * 1024
const READ_BATCH = 4096
const PROGRESS_EVERY = 8192

/** Grows typed arrays by doubling: a few bytes per selected event instead of an object each. */
class Column<T extends Float64Array | Uint32Array | Uint8Array> {
  data: T
  constructor(private readonly make: (n: number) => T) {
    this.data = make(1024)
  }
  set(i: number, value: number): void {
    if (i >= this.data.length) {
      const bigger = this.make(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[i] = value
  }
}

/**
 * Exports lifecycle events as JSONL, grouped by session (each session's events contiguous, sessions
 * in start order), filtered by `filters`, to `write`; resolves with the manifest. Memory stays flat
 * whatever the log size: pass 1 streams the log and keeps, per selected event, only its session
 * number, position and kind in typed arrays (~30 bytes), plus one map entry per session; pass 2 reads
 * the selected lines back by position in output order, a batch at a time, coalescing nearby reads.
 * A source without positions (a bare `EventStore`) is read again per window of sessions instead,
 * buffering at most `windowEvents` events. Events appended after pass 1 are not exported: the export
 * is a snapshot at `manifest.source_head`.
 *
 * @example
 * const out = createWriteStream('sessions.jsonl')
 * const manifest = await runExport(logAuditSource(dir), { reason: 'idle_timeout' }, (chunk) => {
 *   if (!out.write(chunk)) return once(out, 'drain').then(() => {})
 * })
 */
export async function runExport(
  source: AuditSource,
  filters: ExportFilters,
  write: ExportSink,
  options: ExportOptions = {},
): Promise<ExportManifest> {
  const createdAt = (options.now?.() ?? new Date()).toISOString()
  const from = filters.from === undefined ? Number.NEGATIVE_INFINITY : Date.parse(filters.from)
  const to = filters.to === undefined ? Number.POSITIVE_INFINITY : Date.parse(filters.to)
  const inRange = (event: StoredEvent): boolean => {
    if (filters.from === undefined && filters.to === undefined) return true
    const time = Date.parse(event.timestamp)
    return time >= from && time < to
  }
  const onProgress = options.onProgress

  // Pass 1: which sessions, which events, where.
  const sessionIndex = new Map<string, number>()
  const endReason = new Column((n) => new Uint8Array(n))
  const evSession = new Column((n) => new Uint32Array(n))
  const evKind = new Column((n) => new Uint8Array(n))
  const evSeq = new Column((n) => new Float64Array(n))
  const evFile = new Column((n) => new Uint32Array(n))
  const evOffset = new Column((n) => new Float64Array(n))
  const evLength = new Column((n) => new Uint32Array(n))
  let sessions = 0
  let selected = 0
  let scanned = 0
  let scannedBytes = 0
  let head: LogHead = { seq: 0, hash: GENESIS_HASH }

  const visit = (event: StoredEvent, position: LogPosition | undefined): void => {
    scanned++
    head = { seq: event.seq, hash: event.hash }
    let s = sessionIndex.get(event.session_id)
    if (s === undefined) {
      // The first event of a session (its start, in a valid log) decides whether it is selected.
      if (filters.session_id !== undefined && event.session_id !== filters.session_id) return
      if (filters.user_id !== undefined && event.user_id !== filters.user_id) return
      s = sessions++
      sessionIndex.set(event.session_id, s)
      endReason.set(s, 0)
    }
    if (event.event === 'session.end') endReason.set(s, END_REASONS.indexOf(event.reason) + 1)
    if (!inRange(event)) return
    const kind = EVENT_KINDS.indexOf(event.event)
    evSession.set(selected, s)
    evKind.set(selected, kind < 0 ? OTHER_KIND : kind)
    evSeq.set(selected, event.seq)
    if (position) {
      evFile.set(selected, position.file)
      evOffset.set(selected, position.offset)
      evLength.set(selected, position.length)
    }
    selected++
  }

  const positioned = isPositioned(source)
  if (positioned) {
    for await (const { event, position } of source.scanPositions()) {
      visit(event, position)
      scannedBytes += position.length + 1
      if (onProgress && scanned % PROGRESS_EVERY === 0)
        onProgress({ phase: 'scan', events: scanned, bytes: scannedBytes })
    }
  } else {
    for await (const event of source.scan()) {
      visit(event, undefined)
      if (onProgress && scanned % PROGRESS_EVERY === 0) onProgress({ phase: 'scan', events: scanned })
    }
  }
  onProgress?.({ phase: 'scan', events: scanned, ...(positioned ? { bytes: scannedBytes } : {}) })

  // Keep sessions that pass the reason filter; order events by session (in start order), then log order.
  const wantReason = filters.reason === undefined ? -1 : END_REASONS.indexOf(filters.reason) + 1
  const perSession = new Uint32Array(sessions + 1)
  for (let i = 0; i < selected; i++) {
    const s = evSession.data[i]!
    if (wantReason < 0 || endReason.data[s] === wantReason) perSession[s + 1]!++
  }
  let keptSessions = 0
  for (let s = 0; s < sessions; s++) {
    if (perSession[s + 1]! > 0) keptSessions++
    perSession[s + 1]! += perSession[s]!
  }
  const total = perSession[sessions]!
  const order = new Uint32Array(total)
  const cursor = perSession.slice(0, sessions)
  for (let i = 0; i < selected; i++) {
    const s = evSession.data[i]!
    if (wantReason < 0 || endReason.data[s] === wantReason) order[cursor[s]!++] = i
  }

  // Pass 2: write in that order.
  const digest = createHash('sha256')
  const byEvent: Record<string, number> = {}
  let bytes = 0
  let written = 0
  let pending = ''
  let first: ExportedRecordRef | null = null
  let last: ExportedRecordRef | null = null
  let lastLine = ''
  const pseudonymizer = options.pseudonymizer
  const flush = async (): Promise<void> => {
    if (pending === '') return
    const chunk = pending
    pending = ''
    digest.update(chunk, 'utf8')
    bytes += Buffer.byteLength(chunk, 'utf8')
    await write(chunk)
  }
  const emit = async (orderIndex: number, line: string): Promise<void> => {
    const i = order[orderIndex]!
    const kind = evKind.data[i]!
    const name = kind === OTHER_KIND ? 'other' : EVENT_KINDS[kind]!
    byEvent[name] = (byEvent[name] ?? 0) + 1
    const text = pseudonymizer
      ? JSON.stringify(pseudonymizer.apply(JSON.parse(line) as Record<string, unknown>))
      : line
    if (first === null) first = refOf(text)
    lastLine = text
    pending += `${text}\n`
    written++
    if (pending.length >= CHUNK_CHARS) await flush()
    if (onProgress && written % PROGRESS_EVERY === 0) onProgress({ phase: 'write', events: written, total })
  }

  if (positioned) {
    const reader = await source.openReader()
    try {
      for (let startAt = 0; startAt < total; startAt += READ_BATCH) {
        const endAt = Math.min(total, startAt + READ_BATCH)
        const positions: LogPosition[] = []
        for (let k = startAt; k < endAt; k++) {
          const i = order[k]!
          positions.push({ file: evFile.data[i]!, offset: evOffset.data[i]!, length: evLength.data[i]! })
        }
        const lines = await reader.readLines(positions)
        for (let k = startAt; k < endAt; k++) await emit(k, lines[k - startAt]!)
      }
    } finally {
      await reader.close()
    }
  } else {
    await exportByRescan(source, {
      order,
      total,
      evSeq: evSeq.data,
      evSession: evSession.data,
      sessionIndex,
      window: Math.max(1, options.windowEvents ?? 20_000),
      emit,
    })
  }
  await flush()
  if (lastLine !== '') last = refOf(lastLine)
  onProgress?.({ phase: 'write', events: written, total })

  return {
    kind: 'care.session-export',
    manifest_version: 1,
    schema_version: '1.1',
    created_at: createdAt,
    filters: { ...filters },
    order: 'sessions in start order; each session contiguous, its events in log order',
    pseudonymized: pseudonymizer
      ? {
          algorithm: 'HMAC-SHA256',
          prefix: PSEUDONYM_PREFIX,
          fields: [...IDENTITY_FIELDS],
          key_id: pseudonymizer.keyId,
        }
      : null,
    counts: { sessions: keptSessions, events: written, by_event: byEvent, scanned },
    first_record: first,
    last_record: last,
    source_head: head,
    output: { bytes, sha256: digest.digest('hex') },
  }
}

/**
 * Pass 2 for sources without positions: one scan per window of whole sessions holding at most
 * `window` selected events (a bigger session gets a window of its own), each scan stopping at the
 * window's last `seq`. Events are matched to their slot by `seq`, so the same events as pass 1 come out.
 */
async function exportByRescan(
  source: AuditSource,
  plan: {
    order: Uint32Array
    total: number
    evSeq: Float64Array
    evSession: Uint32Array
    sessionIndex: Map<string, number>
    window: number
    emit(orderIndex: number, line: string): Promise<void>
  },
): Promise<void> {
  const { order, total, evSeq, evSession } = plan
  let startAt = 0
  while (startAt < total) {
    let endAt = startAt
    // Extend to whole sessions while within the window (always at least one session).
    while (endAt < total) {
      const session = evSession[order[endAt]!]!
      let sessionEnd = endAt
      while (sessionEnd < total && evSession[order[sessionEnd]!] === session) sessionEnd++
      if (endAt > startAt && sessionEnd - startAt > plan.window) break
      endAt = sessionEnd
    }
    const slotOfSeq = new Map<number, number>()
    let maxSeq = 0
    for (let k = startAt; k < endAt; k++) {
      const seq = evSeq[order[k]!]!
      slotOfSeq.set(seq, k - startAt)
      if (seq > maxSeq) maxSeq = seq
    }
    const lines = new Array<string | undefined>(endAt - startAt)
    for await (const event of source.scan()) {
      const slot = slotOfSeq.get(event.seq)
      if (slot !== undefined) lines[slot] = JSON.stringify(event)
      if (event.seq >= maxSeq) break
    }
    for (let k = startAt; k < endAt; k++) {
      const line = lines[k - startAt]
      if (line === undefined)
        throw new Error(`event seq ${evSeq[order[k]!]} disappeared from the store during the export`)
      await plan.emit(k, line)
    }
    startAt = endAt
  }
}

function refOf(line: string): ExportedRecordRef {
  const record = JSON.parse(line) as Record<string, unknown>
  return {
    seq: record.seq as number,
    hash: record.hash as string,
    record_id: record.record_id as string,
    session_id: record.session_id as string,
    timestamp: record.timestamp as string,
  }
}
