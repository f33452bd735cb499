import { keptSegments } from './archive.js'
import { type ChainedRecord, decodeLine } from './chain.js'
import { LogCorruptError } from './errors.js'
import { type LogFileSystem, nodeFileSystem } from './file-system.js'
import { lineChunks } from './line-scanner.js'
import type { LogPosition } from './recovery.js'
import { eventsDirOf } from './segments.js'

const NEWLINE = 0x0a

/**
 * Streams every record of the log in order with its position, for export and replay; memory stays at
 * one chunk. Each line's hash, `prev_hash` and `seq` are checked and a bad line throws
 * `LogCorruptError`; a final line without newline (a write in progress) is skipped. Needs no lock,
 * so it can read a live log.
 *
 * @example
 * for await (const { record } of readLog('/var/lib/care')) out.write(`${JSON.stringify(record)}\n`)
 */
export async function* readLog<R extends object = Record<string, unknown>>(
  dir: string,
  options: { fs?: LogFileSystem } = {},
): AsyncGenerator<{ record: ChainedRecord<R>; position: LogPosition }> {
  const fs = options.fs ?? nodeFileSystem
  const kept = await keptSegments(fs, eventsDirOf(dir))
  let { seq, hash } = kept.start
  for (const [i, segment] of kept.segments.entries()) {
    if (segment.index !== i + kept.first)
      throw new LogCorruptError(segment.name, 1, 'a segment before this one is missing', segment.path)
    const handle = await fs.open(segment.path, 'read')
    let line = 0
    try {
      for await (const { buf, base, end } of lineChunks(handle)) {
        // Decode the whole chunk before yielding: the buffer is reused once the generator resumes.
        const batch: { record: ChainedRecord<R>; position: LogPosition }[] = []
        let start = 0
        while (start < end) {
          const newline = buf.indexOf(NEWLINE, start)
          line++
          const record = decodeLine(buf, start, newline)
          let reason: string | undefined
          if (typeof record === 'string') reason = record
          else if (record.seq !== seq + 1) reason = `seq is ${record.seq}, expected ${seq + 1}`
          else if (record.prev_hash !== hash) reason = "prev_hash does not match the previous line's hash"
          if (reason !== undefined) {
            yield* batch
            throw new LogCorruptError(segment.name, line, reason, segment.path)
          }
          // The caller names the record type it wrote; the line's own hash vouches it is as written.
          const ok = record as ChainedRecord<R>
          seq = ok.seq
          hash = ok.hash
          batch.push({
            record: ok,
            position: { file: segment.index, offset: base + start, length: newline - start },
          })
          start = newline + 1
        }
        yield* batch
      }
    } finally {
      await handle.close()
    }
  }
}
