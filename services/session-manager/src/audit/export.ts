import { createHash } from 'node:crypto'
import { GENESIS_HASH, type LogHead, type LogPosition } from '@care/event-log'
import { leafHash } from '@care/tlog'
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
  /**
   * Present when the export was asked for inclusion proofs (`ExportOptions.prover`): the signed
   * checkpoint (C2SP signed note) the proofs are against, or null when the log has no checkpoint (then
   * no proof lines are written). See docs/audit.md, "Exports carry inclusion proofs".
   */
  transparency?: ExportTransparency | null
}

/**
 * The manifest's `transparency` member: which signed checkpoint the export's inclusion proofs are
 * against, how many records got a proof, and how many are newer than the checkpoint (`unproven`).
 *
 * @example
 * const t: ExportTransparency = { format: 'care.inclusion-proof/1', checkpoint: note, tree_size: 8, proofs: 3, unproven: 0 }
 */
export interface ExportTransparency {
  format: 'care.inclusion-proof/1'
  checkpoint: string
  tree_size: number
  proofs: number
  unproven: number
}

/**
 * Proves exported records against one signed checkpoint: `prove` gets a batch of records (their `seq`
 * and `leafHash`, the hash of the record's original log line, before any pseudonymisation, for provers
 * that check their own proofs) and gives, in the same order, the RFC 9162 inclusion proof (hashes leaf
 * to root) of leaf `seq − 1` in the checkpoint's tree, or undefined when `seq` is beyond it. Batches let
 * a prover read the hashes of many proofs at once (one query on the PostgreSQL store).
 *
 * @example
 * const prover: RecordProver = {
 *   checkpoint: { size, note },
 *   prove: async (records) => records.map((r) => (r.seq <= size ? tree.inclusionProof(r.seq - 1, size) : undefined)),
 * }
 */
export interface RecordProver {
  readonly checkpoint: { size: number; note: string }
  prove(records: readonly { seq: number; leafHash: Buffer }[]): Promise<(Buffer[] | undefined)[]>
}

/**
 * One line of an export's proofs (after its records in `GET /export`, in `<out>.proofs.jsonl` from the
 * CLI): `{"inclusion_proof": ProofLine}`, one per proven record, in the records' order.
 *
 * @example
 * const { inclusion_proof: p } = JSON.parse(line) as { inclusion_proof: ExportProofLine }
 */
export interface ExportProofLine {
  seq: number
  tree_size: number
  /** Base64 SHA-256(0x00 ‖ original log line): lets a pseudonymised record be checked once revealed. */
  leaf_hash: string
  hashes: string[]
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
  /**
   * Asked once the snapshot head is known (after pass 1) for a prover of the exported records; with
   * one, a proof line per proven record goes to `proofSink` after the records, and the manifest names
   * the checkpoint (`transparency`).
   */
  prover?: (head: LogHead) => Promise<RecordProver | undefined>
  /** Where proof lines go (default: `write`, after the record lines). */
  proofSink?: ExportSink
}

/**
 * Receives the export in chunks of whole lines (UTF-8 bytes; the chunk is the sink's to keep); return a
 * promise to apply backpressure.
 *
 * @example
 * const sink: ExportSink = (chunk) => new Promise((done) => (out.write(chunk) ? done() : out.once('drain', done)))
 */
export type ExportSink = (chunk: Uint8Array) => void | Promise<void>

const EVENT_KINDS = ['session.start', 'session.touch', 'session.end'] as const
const OTHER_KIND = EVENT_KINDS.length
const CHUNK_BYTES = 64 * 1024
const READ_BATCH = 256
const NEWLINE = 0x0a
const PROGRESS_EVERY = 8192

/** Grows typed arrays by doubling: a few bytes per selected event instead of an object each. */
class Column<T extends Float64Array | Uint32Array | Uint16Array | Uint8Array> {
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
  const positioned = isPositioned(source)
  // Positioned sources need where each event is; the others its seq. ~19 bytes per selected event.
  const evSeq = new Column((n) => new Float64Array(positioned ? 0 : n))
  const evFile = new Column((n) => new Uint16Array(n))
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
    if (position) {
      if (position.file > 0xffff) throw new RangeError('more than 65535 segment files: widen the file column')
      evFile.set(selected, position.file)
      evOffset.set(selected, position.offset)
      evLength.set(selected, position.length)
    } else evSeq.set(selected, event.seq)
    selected++
  }

  if (positioned) {
    await source.visitPositions(
      (event, position) => {
        visit(event, position)
        if (onProgress && scanned % PROGRESS_EVERY === 0)
          onProgress({ phase: 'scan', events: scanned, bytes: scannedBytes })
      },
      (bytes) => {
        scannedBytes += bytes
      },
    )
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
  // Reading back by position needs only the order from here on; let the per-event session numbers go.
  if (positioned) evSession.data = new Uint32Array(0)

  // Pass 2: write in that order. Raw log lines are copied as bytes (no decode, no re-encode).
  const digest = createHash('sha256')
  const byEvent: Record<string, number> = {}
  let bytes = 0
  let written = 0
  let out = Buffer.allocUnsafe(CHUNK_BYTES)
  let used = 0
  let firstLine: Buffer | undefined
  let lastLine: Buffer | undefined
  const pseudonymizer = options.pseudonymizer
  const prover = options.prover ? await options.prover(head) : undefined
  // Per written record, when proving: its seq and the leaf hash of its original line (40 bytes).
  const provenSeq = new Column((n) => new Float64Array(prover ? n : 0))
  let leafHashes = Buffer.alloc(prover ? 32 * 1024 : 0)
  const flush = async (): Promise<void> => {
    if (used === 0) return
    // The sink may keep the chunk (a file stream queues it), so it gets this buffer and we take a new one.
    const chunk = out.subarray(0, used)
    out = Buffer.allocUnsafe(CHUNK_BYTES)
    used = 0
    digest.update(chunk)
    bytes += chunk.length
    await write(chunk)
  }
  const emit = async (orderIndex: number, raw: Buffer): Promise<void> => {
    const i = order[orderIndex]!
    const kind = evKind.data[i]!
    const name = kind === OTHER_KIND ? 'other' : EVENT_KINDS[kind]!
    byEvent[name] = (byEvent[name] ?? 0) + 1
    if (prover) {
      provenSeq.set(written, seqOf(raw))
      if (leafHashes.length < 32 * (written + 1)) {
        const bigger = Buffer.alloc(leafHashes.length * 2)
        leafHashes.copy(bigger)
        leafHashes = bigger
      }
      leafHash(raw).copy(leafHashes, 32 * written)
    }
    const line = pseudonymizer
      ? Buffer.from(
          JSON.stringify(pseudonymizer.apply(JSON.parse(raw.toString('utf8')) as Record<string, unknown>)),
        )
      : raw
    if (firstLine === undefined) firstLine = Buffer.from(line)
    if (orderIndex === total - 1) lastLine = Buffer.from(line)
    if (used + line.length + 1 > out.length) {
      await flush()
      if (line.length + 1 > out.length) out = Buffer.allocUnsafe(line.length + 1)
    }
    used += line.copy(out, used)
    out[used++] = NEWLINE
    written++
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
      window: Math.max(1, options.windowEvents ?? 20_000),
      emit,
    })
  }
  await flush()
  onProgress?.({ phase: 'write', events: written, total })
  let transparency: ExportTransparency | null | undefined
  if (options.prover) {
    transparency = prover
      ? await writeProofs(prover, provenSeq.data, leafHashes, written, options.proofSink ?? write)
      : null
  }

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
    first_record: firstLine ? refOf(firstLine) : null,
    last_record: lastLine ? refOf(lastLine) : null,
    source_head: head,
    output: { bytes, sha256: digest.digest('hex') },
    ...(transparency !== undefined ? { transparency } : {}),
  }
}

/** Records handed to `RecordProver.prove` at once. */
const PROOF_BATCH = 256

/** Writes one proof line per record `prover` covers, in export order; returns the manifest member. */
async function writeProofs(
  prover: RecordProver,
  seqs: Float64Array,
  leafHashes: Buffer,
  count: number,
  sink: ExportSink,
): Promise<ExportTransparency> {
  const { size, note } = prover.checkpoint
  let proofs = 0
  let pending: string[] = []
  let pendingBytes = 0
  for (let from = 0; from < count; from += PROOF_BATCH) {
    const batch: { seq: number; leafHash: Buffer }[] = []
    for (let i = from; i < Math.min(count, from + PROOF_BATCH); i++) {
      batch.push({ seq: seqs[i]!, leafHash: leafHashes.subarray(32 * i, 32 * (i + 1)) })
    }
    const proven = await prover.prove(batch)
    for (const [i, { seq, leafHash: hash }] of batch.entries()) {
      const hashes = proven[i]
      if (hashes === undefined) continue
      const proof: ExportProofLine = {
        seq,
        tree_size: size,
        leaf_hash: hash.toString('base64'),
        hashes: hashes.map((h) => h.toString('base64')),
      }
      const text = `${JSON.stringify({ inclusion_proof: proof })}\n`
      pending.push(text)
      pendingBytes += text.length
      proofs++
      if (pendingBytes >= CHUNK_BYTES) {
        await sink(Buffer.from(pending.join('')))
        pending = []
        pendingBytes = 0
      }
    }
  }
  if (pending.length > 0) await sink(Buffer.from(pending.join('')))
  return {
    format: 'care.inclusion-proof/1',
    checkpoint: note,
    tree_size: size,
    proofs,
    unproven: count - proofs,
  }
}

/** The `seq` of a raw log line. */
function seqOf(raw: Buffer): number {
  return (JSON.parse(raw.toString('utf8')) as { seq: number }).seq
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
    window: number
    emit(orderIndex: number, line: Buffer): Promise<void>
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
    const lines = new Array<Buffer | undefined>(endAt - startAt)
    for await (const event of source.scan()) {
      const slot = slotOfSeq.get(event.seq)
      if (slot !== undefined) lines[slot] = source.lineOf?.(event) ?? Buffer.from(JSON.stringify(event))
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

function refOf(line: Buffer): ExportedRecordRef {
  const record = JSON.parse(line.toString('utf8')) as Record<string, unknown>
  return {
    seq: record.seq as number,
    hash: record.hash as string,
    record_id: record.record_id as string,
    session_id: record.session_id as string,
    timestamp: record.timestamp as string,
  }
}
