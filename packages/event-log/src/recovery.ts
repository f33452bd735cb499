import { chainStartOf, manifestIn } from './archive.js'
import { type ChainedRecord, decodeLine, GENESIS_HASH } from './chain.js'
import { CHECKPOINT_FILE, readCheckpoint, removeCheckpoint } from './checkpoint.js'
import { LogCorruptError, ResumeMismatchError } from './errors.js'
import { errnoOf, type LogFileHandle, type LogFileSystem, readFully, writeFully } from './file-system.js'
import { scanLines } from './line-scanner.js'
import { listSegments, type Segment, segmentOf } from './segments.js'

/**
 * Where a record sits on disk: segment number (`events-000003.jsonl` is 3), byte offset of the line,
 * and its length in bytes without the newline. Enough to read the record back with one pread.
 *
 * @example
 * const [record] = await log.read([position])
 */
export interface LogPosition {
  file: number
  offset: number
  length: number
}

/**
 * Where a replay may resume: the newest record covered by a snapshot (its `seq` and `hash`, the segment
 * `file` holding it and `offset`, the byte just past that record's newline). `EventLog.resumePoint`
 * gives the point after the newest durable record; `{ seq: 0, hash: GENESIS_HASH, file: 1, offset: 0 }`
 * names the empty log (resuming after it is a full replay).
 *
 * @example
 * const snapshot = { state: hotState(), point: log.resumePoint }
 * const { log: again } = await EventLog.open({ dir, resumeAfter: snapshot.point })
 */
export interface LogResumePoint {
  seq: number
  hash: string
  file: number
  offset: number
}

/**
 * The newest record of the log: its `seq` (0 for an empty log) and `hash` (GENESIS_HASH when empty).
 *
 * @example
 * console.log(`log at seq ${log.head.seq}`)
 */
export interface LogHead {
  seq: number
  hash: string
}

/**
 * Bytes recovery removed from the log and saved to `brokenFile`: a torn tail (an append that never
 * completed, so was never acknowledged) or, with `repair: true`, everything from the first bad line on.
 *
 * @example
 * for (const cut of report.cuts) console.warn(`${cut.file}:${cut.line} ${cut.reason}`)
 */
export interface RecoveryCut {
  kind: 'torn-tail' | 'repair'
  /** Segment file name, e.g. `events-000002.jsonl`. */
  file: string
  /** 1-based line number of the first removed line. */
  line: number
  offset: number
  bytes: number
  brokenFile: string
  reason: string
}

/**
 * What `EventLog.open` found and did.
 *
 * @example
 * const { log, report } = await EventLog.open({ dir })
 * logger.info(report, `recovered ${report.records} events in ${report.durationMs} ms`)
 */
export interface RecoveryReport {
  files: number
  records: number
  bytes: number
  head: LogHead
  cuts: RecoveryCut[]
  /**
   * A torn tail recovery could not save to `.broken` because the disk is full (ENOSPC/EDQUOT): its bytes
   * are still in the segment after `offset`. The log is readable; appends fail with that errno until the
   * cut completes, which the next append retries (so it finishes once space returns).
   */
  pendingCut?: RecoveryCut
  /** The stale lock (dead pid) that was taken over, if any. */
  staleLock?: { pid: number; hostname: string; started_at: string }
  durationMs: number
  /** With `resumeAfter`: the point replay started after (records up to it were neither read nor replayed). */
  resumedFrom?: LogResumePoint
}

export interface RecoverOptions {
  repair: boolean
  onRecord: ((record: ChainedRecord, position: LogPosition) => void) | undefined
  /** The exact bytes of each kept record line (no newline); the buffer is reused after the call. */
  onLine?: ((line: Buffer) => void) | undefined
  /** Replay only the records after this point (checked first; ResumeMismatchError if it is not ours). */
  resumeAfter?: LogResumePoint | undefined
}

export interface RecoveredState {
  head: LogHead
  segment: Segment
  size: number
  files: number
  records: number
  bytes: number
  cuts: RecoveryCut[]
  /** A torn-tail cut that could not be saved for lack of space, and how to finish it later. */
  pending?: PendingCut
  /** Where the newest kept record ends (file and offset past its newline); the resume point's place. */
  headEnd: { file: number; offset: number }
  /** With `resumeAfter`: the point replay started after (records before it were not read). */
  resumedFrom?: LogResumePoint
}

/** A torn-tail cut recovery could not finish (disk full), and the idempotent step that finishes it. */
export interface PendingCut {
  cut: RecoveryCut
  finish(): Promise<RecoveryCut[]>
}

interface Problem {
  segment: Segment
  line: number
  offset: number
  reason: string
  /** The whole file is out of place (a segment before it is missing). */
  wholeFile?: boolean
  /** The bad bytes are the file's final line without its newline: an append that never completed. */
  incomplete?: boolean
}

/**
 * Reads the whole log once, checking parse + seq + chain for every line, and leaves the directory in a
 * state a writer can append to: torn tail cut off (and saved), corruption thrown or, with repair, cut.
 * Every step is idempotent so a crash in the middle and a second recovery give the same bytes.
 */
export async function recoverLog(
  fs: LogFileSystem,
  eventsDir: string,
  options: RecoverOptions,
): Promise<RecoveredState> {
  const segments = await listSegments(fs, eventsDir)
  const last = segments.at(-1)
  const resume = options.resumeAfter && options.resumeAfter.seq > 0 ? options.resumeAfter : undefined
  if (resume) await checkResumePoint(fs, segments, resume)
  // Only a checkpoint in a sealed segment (not the one being appended to) is trusted.
  const stored = await readCheckpoint(fs, eventsDir)
  const checkpoint = stored && last && stored.file < last.index && stored.seq > 0 ? stored : undefined
  const cuts: RecoveryCut[] = []
  // After archiving, the kept segments start later; the manifest names the record before them.
  const firstPresent = segments[0]?.index ?? 1
  const archived =
    !resume && firstPresent > 1 ? chainStartOf(firstPresent, await manifestIn(fs, eventsDir)) : undefined
  let seq = resume?.seq ?? archived?.seq ?? 0
  let hash = resume?.hash ?? archived?.hash ?? GENESIS_HASH
  let bytes = 0
  let problem: Problem | undefined
  let lastSize = 0
  let headEnd = resume ? { file: resume.file, offset: resume.offset } : { file: 1, offset: 0 }
  // With a resume point, the segments before its one are not even opened: open time is history-free.
  const firstIndex = resume?.file ?? (archived ? firstPresent : 1)
  const scanned = segments.filter((s) => s.index >= firstIndex)
  let expected = firstIndex

  for (const segment of scanned) {
    if (segment.index !== expected) {
      problem = {
        segment,
        line: 1,
        offset: 0,
        reason: `segment ${segmentOf(eventsDir, expected).name} is missing`,
        wholeFile: true,
      }
      break
    }
    expected++
    const handle = await fs.open(segment.path, 'read')
    let size: number
    let line = 0
    const from = resume && segment.index === resume.file ? resume.offset : 0
    try {
      size = await handle.size()
      const onRecord = options.onRecord
      const onLine = options.onLine
      const result = await scanLines(
        handle,
        (buf, start, end, offset) => {
          line++
          // Up to the checkpoint, lines were hash-verified when written: parse and link only (fast path).
          const trusted = checkpoint !== undefined && seq < checkpoint.seq
          const record = decodeLine(buf, start, end, !trusted)
          let reason: string | undefined
          if (typeof record === 'string') reason = record
          else if (record.seq !== seq + 1) reason = `seq is ${record.seq}, expected ${seq + 1}`
          else if (record.prev_hash !== hash) reason = "prev_hash does not match the previous line's hash"
          else if (checkpoint !== undefined && record.seq === checkpoint.seq) {
            const where =
              segment.index === checkpoint.file && offset + (end - start) + 1 === checkpoint.offset
            if (!where || record.hash !== checkpoint.hash) reason = `record does not match ${CHECKPOINT_FILE}`
          }
          if (reason !== undefined) {
            problem = { segment, line, offset, reason }
            return false
          }
          const ok = record as ChainedRecord
          seq = ok.seq
          hash = ok.hash
          headEnd = { file: segment.index, offset: offset + (end - start) + 1 }
          onRecord?.(ok, { file: segment.index, offset, length: end - start })
          onLine?.(buf.subarray(start, end))
          return true
        },
        undefined,
        undefined,
        from,
      )
      if (!result.stopped && result.trailing > 0) {
        problem = {
          segment,
          line: line + 1,
          offset: result.end,
          reason: 'line has no trailing newline (incomplete write)',
          incomplete: true,
        }
      }
      // Line numbers count from the resume offset so far; only an error needs the real ones.
      if (problem && from > 0) problem.line += await countNewlines(handle, from)
      bytes += (problem ? problem.offset : size) - from
    } finally {
      await handle.close()
    }
    if (problem) break
    lastSize = size
  }

  if (!problem && checkpoint && seq < checkpoint.seq && last) {
    if (!options.repair) {
      throw new LogCorruptError(
        last.name,
        0,
        `log ends at seq ${seq}, before ${CHECKPOINT_FILE} seq ${checkpoint.seq}`,
      )
    }
    await removeCheckpoint(fs, eventsDir)
  }
  let segment = last ?? segmentOf(eventsDir, 1)
  let pending: RecoveredState['pending']
  if (problem) {
    const p: Problem = problem
    // Torn tail: only an incomplete final line of the last file (no newline; this includes a tail of NUL
    // bytes left by a power loss on an extended file). A complete line that fails its checks is damage,
    // even as the last line: its append may have been acknowledged, so only `repair` may cut it.
    const torn = !p.wholeFile && p.segment.index === last?.index && p.incomplete === true
    if (!torn && !options.repair) throw new LogCorruptError(p.segment.name, p.line, p.reason, p.segment.path)
    // A repair may cut below the checkpoint; a missing checkpoint only means a slower next recovery.
    if (!torn) await removeCheckpoint(fs, eventsDir)
    const later = segments.filter(
      (s) => s.index > p.segment.index || (p.wholeFile && s.index === p.segment.index),
    )
    try {
      cuts.push(...(await cutLog(fs, eventsDir, p, later, torn ? 'torn-tail' : 'repair')))
    } catch (err) {
      // A torn tail holds no acknowledged record, so a full disk need not stop the start: the log
      // opens before the tail (reads work) and the cut, with its copy into .broken, is finished later.
      if (!torn || !isOutOfSpace(err)) throw err
      const size = (await fs.stat(p.segment.path)).size
      pending = {
        cut: {
          kind: 'torn-tail',
          file: p.segment.name,
          line: p.line,
          offset: p.offset,
          bytes: size - p.offset,
          brokenFile: `${p.segment.name}.broken`,
          reason: `${p.reason}; not yet saved: ${errnoOf(err)}`,
        },
        finish: () => cutLog(fs, eventsDir, p, [], 'torn-tail'),
      }
    }
    if (p.wholeFile) {
      // Continue in the file before the gap (lastSize is its size), or a fresh first file.
      segment = segmentOf(eventsDir, Math.max(firstIndex, expected - 1))
    } else {
      segment = p.segment
      lastSize = p.offset
    }
  }
  if (cuts.length === 0 && !pending) {
    // Make everything recovered durable even if the previous process died between write and fdatasync,
    // so nothing derived from recovery can vanish in a later power loss. (A cut already synced all this.)
    const handle = await fs.open(segment.path, 'write')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.syncDir(eventsDir)
  }
  return {
    head: { seq, hash },
    segment,
    size: lastSize,
    files: segment.index,
    records: seq,
    bytes,
    cuts,
    headEnd,
    ...(pending ? { pending } : {}),
    ...(resume ? { resumedFrom: { ...resume } } : {}),
  }
}

/**
 * Checks that `point` names a record of this log by reading and re-hashing the one line ending at
 * `point.offset` in segment `point.file`; throws ResumeMismatchError otherwise.
 */
async function checkResumePoint(
  fs: LogFileSystem,
  segments: Segment[],
  point: LogResumePoint,
): Promise<void> {
  const ints = [point.seq, point.file, point.offset].every((n) => Number.isSafeInteger(n) && n >= 1)
  if (!ints || typeof point.hash !== 'string' || point.hash.length !== 64) {
    throw new ResumeMismatchError(
      point,
      'seq, file and offset must be positive integers and hash 64 hex digits',
    )
  }
  const segment = segments.find((s) => s.index === point.file)
  if (!segment) throw new ResumeMismatchError(point, `segment ${point.file} does not exist`)
  const handle = await fs.open(segment.path, 'read')
  try {
    const size = await handle.size()
    if (point.offset > size) throw new ResumeMismatchError(point, `segment holds only ${size} bytes`)
    for (let window = Math.min(point.offset, 64 * 1024); ; window = Math.min(point.offset, window * 4)) {
      const buf = await readFully(handle, window, point.offset - window)
      if (buf.length !== window || buf[window - 1] !== NEWLINE) {
        throw new ResumeMismatchError(point, 'no line ends at the offset')
      }
      const previous = buf.lastIndexOf(NEWLINE, window - 2)
      if (previous === -1 && window < point.offset) continue
      const record = decodeLine(buf, previous + 1, window - 1)
      if (typeof record === 'string') throw new ResumeMismatchError(point, `the line there: ${record}`)
      if (record.seq !== point.seq || record.hash !== point.hash) {
        throw new ResumeMismatchError(point, `the line there is seq ${record.seq} with another hash`)
      }
      return
    }
  } finally {
    await handle.close()
  }
}

const NEWLINE = 0x0a

/** Newlines in `[0, upTo)` of a file: the 1-based line number at `upTo` minus one (error paths only). */
async function countNewlines(handle: LogFileHandle, upTo: number): Promise<number> {
  let count = 0
  for (let at = 0; at < upTo; at += COPY_CHUNK) {
    const chunk = await readFully(handle, Math.min(COPY_CHUNK, upTo - at), at)
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) count++
  }
  return count
}

function isOutOfSpace(err: unknown): boolean {
  const code = errnoOf(err)
  return code === 'ENOSPC' || code === 'EDQUOT'
}

async function cutLog(
  fs: LogFileSystem,
  eventsDir: string,
  p: Problem,
  later: Segment[],
  kind: RecoveryCut['kind'],
): Promise<RecoveryCut[]> {
  const cuts: RecoveryCut[] = []
  // Later files first: if we crash half-way, the first bad line is still where it was and the next
  // recovery makes the same decisions. Each .broken is durable (file and directory entry) before the
  // bytes it saves are removed.
  for (const segment of [...later].reverse()) {
    const moved = await saveToBroken(fs, segment.path, 0)
    await fs.syncDir(eventsDir)
    await fs.unlink(segment.path)
    cuts.unshift({
      kind,
      file: segment.name,
      line: 1,
      offset: 0,
      bytes: moved,
      brokenFile: `${segment.name}.broken`,
      reason: segment === p.segment ? p.reason : `follows the cut in ${p.segment.name}`,
    })
  }
  if (later.length > 0) await fs.syncDir(eventsDir)
  if (p.wholeFile) return cuts
  const moved = await saveToBroken(fs, p.segment.path, p.offset)
  await fs.syncDir(eventsDir)
  const handle = await fs.open(p.segment.path, 'write')
  try {
    await handle.truncate(p.offset)
    await handle.sync()
  } finally {
    await handle.close()
  }
  cuts.unshift({
    kind,
    file: p.segment.name,
    line: p.line,
    offset: p.offset,
    bytes: moved,
    brokenFile: `${p.segment.name}.broken`,
    reason: p.reason,
  })
  return cuts
}

const COPY_CHUNK = 4 * 1024 * 1024

/**
 * Appends `path[from, EOF)` to `path.broken` and fsyncs it. Skipped when `.broken` already ends with
 * exactly those bytes: an earlier recovery saved them and crashed before cutting.
 */
async function saveToBroken(fs: LogFileSystem, path: string, from: number): Promise<number> {
  const source = await fs.open(path, 'read')
  try {
    const length = (await source.size()) - from
    if (length <= 0) return 0
    const target = await fs.open(`${path}.broken`, 'write')
    try {
      const targetSize = await target.size()
      if (targetSize >= length && (await sameBytes(source, from, target, targetSize - length, length)))
        return length
      try {
        for (let done = 0; done < length; done += COPY_CHUNK) {
          const chunk = await readFully(source, Math.min(COPY_CHUNK, length - done), from + done)
          await writeFully(target, chunk, targetSize + done)
        }
        await target.sync()
      } catch (err) {
        // Leave .broken as it was, so a retry appends the same bytes once, not after a partial copy.
        await target.truncate(targetSize).catch(() => {})
        throw err
      }
    } finally {
      await target.close()
    }
    return length
  } finally {
    await source.close()
  }
}

async function sameBytes(
  a: LogFileHandle,
  aAt: number,
  b: LogFileHandle,
  bAt: number,
  length: number,
): Promise<boolean> {
  for (let done = 0; done < length; done += COPY_CHUNK) {
    const n = Math.min(COPY_CHUNK, length - done)
    if (!(await readFully(a, n, aAt + done)).equals(await readFully(b, n, bAt + done))) return false
  }
  return true
}
