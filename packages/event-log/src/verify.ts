import { randomInt } from 'node:crypto'
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { keptSegments, manifestIn } from './archive.js'
import { type ChainedRecord, GENESIS_HASH } from './chain.js'
import { errnoOf, type LogFileHandle, type LogFileSystem, nodeFileSystem } from './file-system.js'
import type { LogHead } from './recovery.js'
import { eventsDirOf, type Segment } from './segments.js'
import {
  type ChunkCheckOptions,
  type ChunkResult,
  checkChunk,
  hashOfLine,
  linkProblem,
  loadRecordCheck,
  STAGE_DECODE,
} from './verify-chunk.js'
import { CLOSED, decodeId, OPENED, PairTable } from './verify-pairs.js'
import type { VerifyWorkerData, VerifyWorkerReply, VerifyWorkerTask } from './verify-worker.js'

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
 * console.log(`${report.records} records, ${report.keys} sessions`)
 */
export interface VerifyCounts {
  files: number
  records: number
  bytes: number
  /** Distinct keys opened under `rules.pairing` (0 without it). */
  keys: number
  /** Records per value of `rules.kindField`, in order of first appearance (empty without it). */
  events: Record<string, number>
  head: LogHead
  durationMs: number
  /**
   * Set when segments were archived (`archiveSegments`): the chain was checked from the archive manifest's
   * `through` record (`fromSeq`), or from seq 1 through the archive when `archiveDir` was given.
   */
  archive?: { segments: number; verified: boolean; fromSeq: number }
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
 * Record-level rules `verifyLog` checks on top of the chain, for a record type the log itself knows
 * nothing about. Plain data (not functions), so the rules reach verification's worker threads. All
 * optional: without rules only JSON, hashes, `seq`, `prev_hash` and the final newline are checked.
 *
 * @example
 * const sessionRules: VerifyRules = {
 *   kindField: 'event',
 *   timestampField: 'timestamp',
 *   pairing: { keyField: 'session_id', open: 'session.start', close: 'session.end', noun: 'session' },
 * }
 * await verifyLog(dir, { rules: sessionRules })
 */
export interface VerifyRules {
  /** String field every record must have; `events` counts records per value. */
  kindField?: string
  /** String field every record must have, an ISO-8601 date that never goes back along the log. */
  timestampField?: string
  /**
   * Per value of `keyField`: at most one record whose kind is `open`, at most one whose kind is
   * `close`, and the close after the open. Needs `kindField`; every record must have `keyField`.
   */
  pairing?: {
    keyField: string
    open: string
    close: string /** Word for a key in problems. */
    noun?: string
  }
}

/**
 * Options of `verifyLog`. `checkRecord` / `checkRecordModule` add a per-record check (e.g. schema
 * validation) evaluated where lines are parsed; its reason is reported like the built-in ones, after
 * them for the same line. A function cannot cross into a worker thread, so `checkRecord` makes the run
 * single-threaded; `checkRecordModule` names a module exporting `checkRecord` that each worker imports.
 *
 * @example
 * await verifyLog(dir, { onProgress: (done, total) => bar.update(done / total) })
 * await verifyLog(dir, { checkRecordModule: new URL('./schema-record-check.js', import.meta.url) })
 */
export interface VerifyOptions {
  onProgress?(bytes: number, totalBytes: number): void
  /** A head published elsewhere (e.g. an audit anchor): also detects lines cut off at a line boundary. */
  expectedHead?: LogHead
  fs?: LogFileSystem
  /**
   * Worker threads that parse and hash (the calling thread joins in when they are all busy). Default:
   * one per core but one (at most 3) for logs of 16 MiB or more, else 0 (in-process). Without the
   * compiled `verify-worker.js` beside this module (e.g. when running the TypeScript sources)
   * verification always runs in-process.
   */
  workers?: number
  /** Bytes read at a time (default 4 MiB, 1 MiB with workers; a longer line gets a bigger buffer). For tuning and tests. */
  chunkBytes?: number
  /** Returns the reason a (hash-checked, chain-linked) record is bad, or undefined. Runs in-process. */
  checkRecord?: (record: ChainedRecord) => string | undefined
  /** URL or absolute path of an ES module exporting `checkRecord(record)`; runs in the workers. */
  checkRecordModule?: string | URL
  /** Record-level rules of the record type (see `VerifyRules`). */
  rules?: VerifyRules
  /**
   * The directory `archiveSegments` moved old segments to: they are verified too, as the start of the
   * chain. Without it an archived log is verified from the manifest's record before the first kept
   * segment, and a pairing close whose open was archived is accepted.
   */
  archiveDir?: string
}

const NEWLINE = 0x0a
/** Below this much log, starting workers costs more than it saves. */
const PARALLEL_MIN_BYTES = 16 * 1024 * 1024
const CHUNK_BYTES = 4 * 1024 * 1024
/** Smaller when parallel: the chunks in flight then stay within the CPU caches. */
const PARALLEL_CHUNK_BYTES = 1024 * 1024
const WORKER_URL = new URL('./verify-worker.js', import.meta.url)
/**
 * Chunks a worker may have queued before the calling thread checks the next one itself: deep enough
 * that a worker never starves while the calling thread is busy with a chunk of its own.
 */
const QUEUED_PER_WORKER = 3

/** Checks chunks in order of submission, in-process or on worker threads. */
interface ChunkChecker {
  readonly shared: boolean
  check(buf: Buffer, end: number): Promise<ChunkResult>
  close(): Promise<void>
}

interface PendingChunk {
  segment: Segment
  buf: Buffer
  end: number
  result: Promise<ChunkResult>
}

type Pending = PendingChunk | { segment: Segment; trailing: true }

/**
 * Streams the whole log in bounded memory (a few chunks plus one small entry per paired key) and checks
 * every line: JSON, hash, `prev_hash` chain, `seq` continuity across files, a final newline, and the
 * record-level `rules` (e.g. non-decreasing `timestamp`, at most one `session.start` and one
 * `session.end` per `session_id`, the end after the start) and `checkRecord`. Stops at the first problem. Big logs are parsed and hashed on worker threads while the
 * main thread reads ahead and runs the in-order checks. Safe to run next to a live writer (a line still
 * being written shows up as a missing newline).
 *
 * @example
 * const report = await verifyLog('/var/lib/care')
 * process.exitCode = report.ok ? 0 : 1
 */
export async function verifyLog(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now()
  const fs = options.fs ?? nodeFileSystem
  const eventsDir = eventsDirOf(dir)
  const kept = await keptSegments(fs, eventsDir)
  let segments = kept.segments
  let firstIndex = kept.first
  let start = kept.start
  let archive: VerifyCounts['archive']
  if (kept.first > 1) {
    const manifest = await manifestIn(fs, eventsDir)
    const listed = (manifest?.segments ?? [])
      .map((s) => ({ index: Number(/(\d+)/.exec(s.name)?.[1]), name: s.name }))
      .filter((s) => s.index < kept.first)
    archive = { segments: listed.length, verified: false, fromSeq: start.seq }
    if (options.archiveDir !== undefined) {
      const archiveDir = options.archiveDir
      segments = [...listed.map((s) => ({ ...s, path: join(archiveDir, s.name) })), ...segments]
      firstIndex = 1
      start = { seq: 0, hash: GENESIS_HASH }
      archive = { segments: listed.length, verified: true, fromSeq: 0 }
    }
  }
  const counts: VerifyCounts = {
    files: segments.length,
    records: 0,
    bytes: 0,
    keys: 0,
    events: {},
    head: { ...start },
    durationMs: 0,
    ...(archive ? { archive } : {}),
  }
  let totalBytes = 0
  for (const segment of segments) {
    try {
      totalBytes += (await fs.stat(segment.path)).size
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err
      counts.durationMs = Math.round(performance.now() - started)
      return {
        ...counts,
        ok: false,
        problem: { file: segment.name, line: 1, reason: `${segment.path} is missing` },
      }
    }
  }
  // Verifying from after an archive boundary: an open of the pairing may lie in the archive.
  const openMayBeArchived = firstIndex > 1
  const rules = options.rules
  const pairing = rules?.pairing
  if (pairing && rules?.kindField === undefined)
    throw new TypeError('verifyLog: rules.pairing needs rules.kindField')
  const noun = pairing?.noun ?? pairing?.keyField
  // Sized for a key per ~2 KiB of log, so a typical log never rehashes (it grows if needed).
  const pairs = new PairTable(pairing ? totalBytes / 1024 : 16)
  let seq = start.seq
  let hash = start.hash
  let lastTimestamp = ''
  let problem: VerifyProblem | undefined
  let lineSegment: Segment | undefined
  let line = 0
  const onProgress = options.onProgress
  const expected = options.expectedHead

  const addKinds = (result: ChunkResult, lines: number) => {
    if (result.kindNames.length === 0) return
    const tally = new Array<number>(result.kindNames.length).fill(0)
    if (lines === result.checked) tally.splice(0, tally.length, ...result.kindCounts)
    else
      for (let i = 0; i < lines; i++)
        tally[result.kinds[i] as number] = (tally[result.kinds[i] as number] as number) + 1
    for (const [i, kind] of result.kindNames.entries()) {
      const n = tally[i] as number
      if (n === 0) continue
      counts.events[kind] = (counts.events[kind] ?? 0) + n
    }
  }

  /** Stops at line `index` of the chunk: the counts and head cover the lines before it. */
  const failAt = (pending: PendingChunk, result: ChunkResult, index: number, reason: string) => {
    problem = { file: pending.segment.name, line: line + index + 1, reason }
    if (index === 0) return
    seq = result.firstSeq + index - 1
    hash = index === result.checked ? result.lastHash : hashOfLine(pending.buf, pending.end, index - 1)
    addKinds(result, index)
  }

  /** The in-order half: line 0 against the previous chunk, then pairing state, then the chunk's problem. */
  const apply = (pending: PendingChunk, result: ChunkResult) => {
    const first = result.problem
    if (first && first.index === 0 && first.stage === STAGE_DECODE) {
      return failAt(pending, result, 0, first.reason)
    }
    const link = linkProblem(
      result.firstSeq,
      result.firstPrevHash,
      result.firstTimestamp ?? undefined,
      seq,
      hash,
      lastTimestamp,
      rules?.timestampField,
    )
    if (link !== undefined) return failAt(pending, result, 0, link)
    const marks = result.sessionMarks
    const keys = result.sessionKeys
    const idEnds = result.sessionIdEnds
    const idBytes = result.sessionIdBytes
    for (let i = 0, from = 0; i < result.sessions; i++) {
      const to = idEnds[i] as number
      const hi = keys[2 * i] as number
      const lo = keys[2 * i + 1] as number
      const mark = marks[i] as number
      const slot = pairs.find(hi, lo, idBytes, from, to)
      const { open, close } = pairing as NonNullable<typeof pairing>
      if ((mark & 1) === 0) {
        if (slot >= 0) {
          const id = decodeId(idBytes, from, to)
          return failAt(pending, result, mark >>> 1, `second ${open} for ${noun} ${id}`)
        }
        pairs.insert(slot, hi, lo, idBytes, from, to, OPENED)
      } else {
        if (slot < 0) {
          if (!openMayBeArchived) {
            const id = decodeId(idBytes, from, to)
            return failAt(pending, result, mark >>> 1, `${close} before ${open} for ${noun} ${id}`)
          }
          // Its open lies in the archive, which this run does not read.
          pairs.insert(slot, hi, lo, idBytes, from, to, CLOSED)
        } else {
          if (pairs.stateAt(slot) === CLOSED) {
            const id = decodeId(idBytes, from, to)
            return failAt(pending, result, mark >>> 1, `second ${close} for ${noun} ${id}`)
          }
          pairs.setState(slot, CLOSED)
        }
      }
      from = to
    }
    if (first) return failAt(pending, result, first.index, first.reason)
    seq = result.lastSeq
    hash = result.lastHash
    lastTimestamp = result.lastTimestamp
    addKinds(result, result.checked)
    line += result.checked
  }

  // Random per run, so a crafted log cannot aim many session ids at one slot of the table.
  const checker = await chunkChecker(options, totalBytes, randomInt(2 ** 31))
  const queue: Pending[] = []
  const free: Buffer[] = []
  let buffers = 0
  // Enough chunks in flight to keep every worker busy while the main thread catches up.
  const maxBuffers = checker.shared ? (QUEUED_PER_WORKER + 1) * (checker as WorkerChecker).size + 2 : 1
  const chunkBytes =
    options.chunkBytes ??
    (checker.shared
      ? PARALLEL_CHUNK_BYTES
      : Math.min(CHUNK_BYTES, Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(totalBytes + 1)))))
  const allocate = (size: number) =>
    checker.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size)

  const processNext = async (): Promise<void> => {
    const pending = queue.shift()
    if (!pending) return
    if (pending.segment !== lineSegment) {
      lineSegment = pending.segment
      line = 0
    }
    if ('trailing' in pending) {
      problem = {
        file: pending.segment.name,
        line: line + 1,
        reason: 'last line has no trailing newline (cut off, or being written)',
      }
      return
    }
    apply(pending, await pending.result)
    free.push(pending.buf)
  }

  const acquire = async (): Promise<Buffer | undefined> => {
    for (;;) {
      if (problem) return undefined
      const buf = free.pop()
      if (buf) return buf
      if (buffers < maxBuffers) {
        buffers++
        return allocate(chunkBytes)
      }
      await processNext()
    }
  }

  const readSegment = async (segment: Segment, handle: LogFileHandle) => {
    let position = 0
    let carry: Buffer | undefined
    for (;;) {
      let buf = await acquire()
      if (!buf) return
      let filled = 0
      if (carry) {
        if (carry.length >= buf.length) buf = allocate(2 ** Math.ceil(Math.log2(carry.length + 1)))
        filled = carry.copy(buf, 0)
        carry = undefined
      }
      let end = 0
      while (end === 0) {
        if (filled === buf.length) {
          // A line longer than a chunk: this buffer takes the place of the smaller one.
          const bigger = allocate(buf.length * 2)
          buf.copy(bigger, 0, 0, filled)
          buf = bigger
        }
        const read = await handle.read(buf, filled, buf.length - filled, position)
        if (read === 0) break
        position += read
        filled += read
        counts.bytes += read
        onProgress?.(counts.bytes, totalBytes)
        end = buf.lastIndexOf(NEWLINE, filled - 1) + 1
      }
      if (end === 0) {
        free.push(buf)
        if (filled > 0) queue.push({ segment, trailing: true })
        return
      }
      if (end < filled) carry = Buffer.from(buf.subarray(end, filled))
      const result = checker.check(buf, end)
      // Settled by processNext, unless a problem earlier in the log makes it moot.
      result.catch(() => {})
      queue.push({ segment, buf, end, result })
      if (!checker.shared) await processNext()
    }
  }

  try {
    for (const [i, segment] of segments.entries()) {
      if (segment.index !== i + firstIndex) {
        while (queue.length > 0 && !problem) await processNext()
        if (!problem) {
          problem = {
            file: segment.name,
            line: 1,
            reason: `segment events-${String(i + firstIndex).padStart(6, '0')}.jsonl is missing`,
          }
        }
        break
      }
      const handle = await fs.open(segment.path, 'read')
      try {
        await readSegment(segment, handle)
      } finally {
        await handle.close()
      }
      if (problem) break
    }
    while (queue.length > 0 && !problem) await processNext()
  } finally {
    await checker.close()
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
  counts.keys = pairs.size
  counts.head = { seq, hash }
  counts.durationMs = Math.round(performance.now() - started)
  return problem ? { ...counts, ok: false, problem } : { ...counts, ok: true }
}

async function chunkChecker(options: VerifyOptions, totalBytes: number, seed: number): Promise<ChunkChecker> {
  if (options.checkRecord && options.checkRecordModule) {
    throw new TypeError('verifyLog: give checkRecord or checkRecordModule, not both')
  }
  const moduleSpecifier =
    options.checkRecordModule === undefined ? undefined : moduleUrl(options.checkRecordModule)
  // The calling thread checks chunks too when the workers are saturated, so one core needs no worker.
  const workers = options.checkRecord
    ? 0
    : (options.workers ?? (totalBytes >= PARALLEL_MIN_BYTES ? Math.min(3, availableParallelism() - 1) : 0))
  const checkRecord =
    options.checkRecord ?? (moduleSpecifier ? await loadRecordCheck(moduleSpecifier) : undefined)
  const chunkOptions: ChunkCheckOptions = {
    seed,
    expectedHead: options.expectedHead,
    checkRecord,
    rules: options.rules,
  }
  if (workers > 0 && existsSync(fileURLToPath(WORKER_URL))) {
    return new WorkerChecker(
      workers,
      { seed, expectedHead: options.expectedHead, checkRecordModule: moduleSpecifier, rules: options.rules },
      chunkOptions,
    )
  }
  return {
    shared: false,
    check: async (buf, end) => checkChunk(buf, end, chunkOptions),
    close: async () => {},
  }
}

function moduleUrl(specifier: string | URL): string {
  if (specifier instanceof URL) return specifier.href
  return specifier.startsWith('/') ? pathToFileURL(specifier).href : specifier
}

/** Hands chunks (in shared memory) to the least busy of a few worker threads. */
class WorkerChecker implements ChunkChecker {
  readonly shared = true
  readonly #workers: { worker: Worker; busy: number }[] = []
  readonly #waiting = new Map<
    number,
    { resolve(r: ChunkResult): void; reject(e: Error): void; slot: number }
  >()
  #nextId = 0
  #failure: Error | undefined

  readonly #inline: ChunkCheckOptions | undefined

  /** `inline`: check a chunk on the calling thread when every worker already has one queued. */
  constructor(count: number, data: VerifyWorkerData, inline?: ChunkCheckOptions) {
    this.#inline = inline
    for (let slot = 0; slot < count; slot++) {
      const worker = new Worker(WORKER_URL, { workerData: data })
      worker.on('message', (reply: VerifyWorkerReply) => this.#settle(reply))
      worker.on('error', (err) => this.#fail(err))
      worker.on('exit', (code) => this.#fail(new Error(`verify worker exited with code ${code}`)))
      this.#workers.push({ worker, busy: 0 })
    }
  }

  get size(): number {
    return this.#workers.length
  }

  check(buf: Buffer, end: number): Promise<ChunkResult> {
    if (this.#failure) return Promise.reject(this.#failure)
    let slot = 0
    for (let i = 1; i < this.#workers.length; i++) {
      if ((this.#workers[i]?.busy ?? 0) < (this.#workers[slot]?.busy ?? 0)) slot = i
    }
    const target = this.#workers[slot] as { worker: Worker; busy: number }
    if (this.#inline && target.busy >= QUEUED_PER_WORKER) {
      try {
        return Promise.resolve(checkChunk(buf, end, this.#inline))
      } catch (err) {
        return Promise.reject(err)
      }
    }
    target.busy++
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject, slot })
      const task: VerifyWorkerTask = { id, buffer: buf.buffer as SharedArrayBuffer, end }
      target.worker.postMessage(task)
    })
  }

  async close(): Promise<void> {
    this.#failure ??= new Error('verify workers closed')
    for (const { worker } of this.#workers) worker.removeAllListeners('exit')
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()))
  }

  #settle(reply: VerifyWorkerReply): void {
    const waiting = this.#waiting.get(reply.id)
    if (!waiting) return
    this.#waiting.delete(reply.id)
    const owner = this.#workers[waiting.slot]
    if (owner) owner.busy--
    if ('result' in reply) waiting.resolve(reply.result)
    else waiting.reject(Object.assign(new Error(reply.error), reply.stack ? { stack: reply.stack } : {}))
  }

  #fail(err: Error): void {
    this.#failure ??= err
    for (const waiting of this.#waiting.values()) waiting.reject(err)
    this.#waiting.clear()
  }
}
