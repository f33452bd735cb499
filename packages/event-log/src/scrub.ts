// The background scrub: re-reads sealed segments at a bounded rate and checks them against the digest
// recorded at sealing, line by line (hash, seq, prev_hash) and across segment boundaries.
import { type ChainedRecord, GENESIS_HASH } from './chain.js'
import type { LogFileSystem } from './file-system.js'
import { firstMismatch, passSegment, readDigest, type SegmentDigest, writeDigest } from './segment-digest.js'
import { segmentOf } from './segments.js'

/**
 * What the background scrub has found so far. `mismatch` names the first damaged line of the latest
 * pass that found one and stays set until a later pass completes clean.
 *
 * @example
 * const { lastResult, mismatch } = log.scrubStatus
 * if (lastResult === 'mismatch') readiness.fail(`${mismatch!.file}:${mismatch!.line} ${mismatch!.reason}`)
 */
export interface ScrubStatus {
  /** A pass is in progress. */
  running: boolean
  /** Completed passes since open. */
  passes: number
  /** Sealed segments checked in the current (or last) pass, and how many that pass covers. */
  segmentsChecked: number
  segmentsTotal: number
  /** Bytes read in the current (or last) pass. */
  bytesChecked: number
  /** Result of the last completed pass. */
  lastResult?: 'ok' | 'mismatch'
  /** Epoch ms the last pass completed. */
  lastFinishedAt?: number
  /** The first damaged place found: segment file name, 1-based line, reason. */
  mismatch?: { file: string; line: number; reason: string }
  /** Digests written by the scrub because they were missing or damaged (the segment itself verified). */
  digestsRebuilt: number
}

/**
 * Options of the background scrub (`OpenLogOptions.scrub`).
 *
 * @example
 * const scrub: ScrubOptions = { bytesPerSecond: 8 * 1024 * 1024, intervalMs: 6 * 3600_000, onStatus: report }
 */
export interface ScrubOptions {
  /** Read at most this many bytes per second (default 4 MiB/s). */
  bytesPerSecond?: number
  /** Pause between passes (default 6 hours). The first pass starts `startDelayMs` (default 10 s) after open. */
  intervalMs?: number
  startDelayMs?: number
  /** Called whenever the status changes (a segment checked, a pass done, a mismatch); must not throw. */
  onStatus?: (status: ScrubStatus) => void
}

export interface ScrubContext {
  fs: LogFileSystem
  eventsDir: string
  /** The sealed segments now: first and last number (last < first when there are none). */
  sealed(): { first: number; last: number }
  /** seq and hash of the record before `first` (archived), when the first kept segment is not 1. */
  before(first: number): { seq: number; hash: string } | undefined
  recordTime: ((record: ChainedRecord) => number) | undefined
  /** True while the log itself is still writing this segment's sidecars (just sealed): skipped this pass. */
  sealing(file: number): boolean
  /** A verified digest, for `read()`'s cheap checks. */
  remember(file: number, digest: SegmentDigest): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
}

export const DEFAULT_SCRUB_BYTES_PER_SECOND = 4 * 1024 * 1024
const DEFAULT_INTERVAL_MS = 6 * 3600_000
const DEFAULT_START_DELAY_MS = 10_000

/** Runs scrub passes (on demand, or on a timer when started) until stopped. */
export class LogScrubber {
  readonly #context: ScrubContext
  readonly #options: ScrubOptions
  readonly #abort = new AbortController()
  #status: ScrubStatus = {
    running: false,
    passes: 0,
    segmentsChecked: 0,
    segmentsTotal: 0,
    bytesChecked: 0,
    digestsRebuilt: 0,
  }
  #current: Promise<ScrubStatus> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(context: ScrubContext, options: ScrubOptions) {
    this.#context = context
    this.#options = options
  }

  get status(): ScrubStatus {
    return { ...this.#status, ...(this.#status.mismatch ? { mismatch: { ...this.#status.mismatch } } : {}) }
  }

  /** Schedules passes: the first after `startDelayMs`, then one every `intervalMs` after the last ended. */
  start(): void {
    this.#schedule(this.#options.startDelayMs ?? DEFAULT_START_DELAY_MS)
  }

  #schedule(delay: number): void {
    if (this.#abort.signal.aborted) return
    this.#timer = setTimeout(() => {
      this.pass()
        .catch(() => {})
        .finally(() => this.#schedule(this.#options.intervalMs ?? DEFAULT_INTERVAL_MS))
    }, delay)
    this.#timer.unref()
  }

  /** Runs one pass now (or joins the one running) and resolves with the status after it. */
  pass(): Promise<ScrubStatus> {
    this.#current ??= this.#pass().finally(() => {
      this.#current = undefined
    })
    return this.#current
  }

  /** Stops the timer and aborts a running pass; resolves once it has stopped. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer)
    this.#abort.abort()
    await this.#current?.catch(() => {})
  }

  #emit(): void {
    try {
      this.#options.onStatus?.(this.status)
    } catch (err) {
      this.#context.error({ err }, 'event log: a scrub status observer failed')
    }
  }

  async #pass(): Promise<ScrubStatus> {
    const { fs, eventsDir } = this.#context
    const { first, last } = this.#context.sealed()
    const signal = this.#abort.signal
    this.#status = {
      ...this.#status,
      running: true,
      segmentsChecked: 0,
      segmentsTotal: Math.max(0, last - first + 1),
      bytesChecked: 0,
    }
    this.#emit()
    let found: ScrubStatus['mismatch']
    let before = first === 1 ? { seq: 0, hash: GENESIS_HASH } : this.#context.before(first)
    let bytesBefore = 0
    try {
      for (let file = first; file <= last; file++) {
        if (this.#context.sealing(file)) {
          this.#status.segmentsTotal--
          before = undefined
          continue
        }
        const segment = segmentOf(eventsDir, file)
        const stored = await readDigest(fs, eventsDir, segment)
        const pass = await passSegment(fs, segment, {
          verify: true,
          recordTime: this.#context.recordTime,
          bytesPerSecond: this.#options.bytesPerSecond ?? DEFAULT_SCRUB_BYTES_PER_SECOND,
          signal,
          onProgress: (bytes) => {
            this.#status.bytesChecked = bytesBefore + bytes
          },
        })
        bytesBefore += pass.digest.bytes
        let problem: { line: number; reason: string } | undefined = pass.problem
        if (
          !problem &&
          before &&
          (pass.digest.first.seq !== before.seq + 1 || pass.digest.first.prev_hash !== before.hash)
        ) {
          problem = {
            line: 1,
            reason: 'first line does not link to the last record of the segment before it',
          }
        }
        if (typeof stored === 'object') {
          // A damaged segment is named by the digest's first differing block when the lines still verify.
          problem ??= firstMismatch(stored, pass)
        } else if (!problem) {
          await writeDigest(fs, eventsDir, segment, pass.digest)
          this.#status.digestsRebuilt++
          this.#context.warn(
            { file: segment.name, digest: stored },
            `event log scrub: wrote a ${stored} digest`,
          )
        }
        if (problem) {
          if (!found) {
            found = { file: segment.name, line: problem.line, reason: problem.reason }
            // Reported at once (readiness turns red now), not only when the pass ends.
            this.#status.mismatch = found
          }
          this.#context.error(
            { file: segment.name, line: problem.line, reason: problem.reason },
            'event log scrub: mismatch',
          )
        } else {
          this.#context.remember(file, typeof stored === 'object' ? stored : pass.digest)
        }
        before = pass.digest.last.seq > 0 ? pass.digest.last : undefined
        this.#status.segmentsChecked++
        this.#emit()
      }
    } finally {
      this.#status.running = false
    }
    this.#status = {
      ...this.#status,
      passes: this.#status.passes + 1,
      lastResult: found ? 'mismatch' : 'ok',
      lastFinishedAt: Date.now(),
    }
    if (found) this.#status.mismatch = found
    else delete this.#status.mismatch
    this.#emit()
    return this.status
  }
}
