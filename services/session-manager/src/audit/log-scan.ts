// Lean, callback-style reading of the JSONL log for audit passes over the whole history. Built on the
// log's own line scanner and line decoder (same checks as `readLog`), but without an async step or an
// object per record: `readLog` yields every record through an async generator and decodes a whole 4 MiB
// chunk ahead, which costs ~2x the time and ~120 MB of peak RSS on a 1M-event log.
import { type ChainedRecord, decodeLine } from '../log/chain.js'
import {
  GENESIS_HASH,
  LogCorruptError,
  type LogHead,
  type LogPosition,
  nodeFileSystem,
} from '../log/index.js'
import { scanLines } from '../log/line-scanner.js'
import { eventsDirOf, listSegments, type Segment } from '../log/segments.js'

/**
 * Chunk for audit scans: big enough for few reads, small enough to keep RSS flat.
 *
 * @example
 * console.log(`audit scans read ${AUDIT_CHUNK_BYTES / 1024} KiB at a time`)
 */
export const AUDIT_CHUNK_BYTES = 512 * 1024

/**
 * Calls `visit` for every complete line of every segment, in order, with the segment, the 1-based
 * line number and the file offset. A final line without newline (a write in progress) is not visited.
 * Throws `LogCorruptError` when a segment before another is missing.
 *
 * @example
 * await visitLogLines(dir, (buf, start, end, segment, line) => {
 *   JSON.parse(buf.toString('utf8', start, end))
 *   return true
 * })
 */
export async function visitLogLines(
  dir: string,
  visit: (
    buf: Buffer,
    start: number,
    end: number,
    segment: Segment,
    line: number,
    offset: number,
  ) => boolean | undefined,
  onBytes?: (bytes: number) => void,
): Promise<void> {
  const fs = nodeFileSystem
  for (const [i, segment] of (await listSegments(fs, eventsDirOf(dir))).entries()) {
    if (segment.index !== i + 1) {
      throw new LogCorruptError(
        segment.name,
        1,
        `segment events-${String(i + 1).padStart(6, '0')}.jsonl is missing`,
        segment.path,
      )
    }
    const handle = await fs.open(segment.path, 'read')
    let line = 0
    try {
      const result = await scanLines(
        handle,
        (buf, start, end, offset) => {
          line++
          return visit(buf, start, end, segment, line, offset)
        },
        onBytes,
        AUDIT_CHUNK_BYTES,
      )
      if (result.stopped) return
    } finally {
      await handle.close()
    }
  }
}

/**
 * Every record of the log, in order, hash- and chain-checked like `readLog`, handed to `visit` with its
 * position. Resolves with the head it reached. Needs no lock, so it reads a live log.
 *
 * @example
 * const head = await visitLog(dir, (record, position) => index.add(record.session_id, position))
 */
export async function visitLog(
  dir: string,
  visit: (record: ChainedRecord, position: LogPosition) => void,
  onBytes?: (bytes: number) => void,
): Promise<LogHead> {
  let seq = 0
  let hash = GENESIS_HASH
  await visitLogLines(
    dir,
    (buf, start, end, segment, line, offset) => {
      const record = decodeLine(buf, start, end)
      let reason: string | undefined
      if (typeof record === 'string') reason = record
      else if (record.seq !== seq + 1) reason = `seq is ${record.seq}, expected ${seq + 1}`
      else if (record.prev_hash !== hash) reason = "prev_hash does not match the previous line's hash"
      if (reason !== undefined) throw new LogCorruptError(segment.name, line, reason, segment.path)
      const ok = record as ChainedRecord
      seq = ok.seq
      hash = ok.hash
      visit(ok, { file: segment.index, offset, length: end - start })
      return true
    },
    onBytes,
  )
  return { seq, hash }
}
