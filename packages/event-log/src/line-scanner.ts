import type { LogFileHandle } from './file-system.js'

const NEWLINE = 0x0a
const DEFAULT_CHUNK = 4 * 1024 * 1024

/**
 * Called for every complete line: `buf[start, end)` without the newline, `offset` its byte offset in the
 * file. `buf` is reused between chunks, so keep nothing that points into it. Return `false` to stop.
 */
export type LineVisitor = (buf: Buffer, start: number, end: number, offset: number) => boolean | undefined

export interface ScanResult {
  /** Offset just past the last newline visited (on a stop: the start of the stopping line). */
  end: number
  /** Bytes after `end` that have no newline (0 when stopped). */
  trailing: number
  stopped: boolean
}

/**
 * A piece of a file holding only whole lines: `buf[0, end)` ends with a newline and starts at file
 * offset `base`. The last piece of a file has `end` 0 and `trailing` > 0 if the file does not end
 * with a newline. `buf` is only valid until the next piece is requested.
 */
export interface LineChunk {
  buf: Buffer
  base: number
  end: number
  trailing: number
}

/**
 * Streams a file in big chunks cut at newlines, so recovery and verification hold one chunk in memory
 * whatever the file size. A line longer than a chunk grows the buffer.
 */
export async function* lineChunks(
  handle: LogFileHandle,
  onRead?: (bytes: number) => void,
  chunkSize = DEFAULT_CHUNK,
  from = 0,
): AsyncGenerator<LineChunk> {
  let buf = Buffer.allocUnsafe(chunkSize)
  let carry = 0
  let base = from
  let position = from
  for (;;) {
    if (carry === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2)
      buf.copy(bigger, 0, 0, carry)
      buf = bigger
    }
    const read = await handle.read(buf, carry, buf.length - carry, position)
    if (read === 0) break
    position += read
    onRead?.(read)
    const filled = carry + read
    const end = buf.lastIndexOf(NEWLINE, filled - 1) + 1
    if (end > 0) {
      yield { buf, base, end, trailing: 0 }
      buf.copy(buf, 0, end, filled)
      base += end
      carry = filled - end
    } else {
      carry = filled
    }
  }
  if (carry > 0) yield { buf, base, end: 0, trailing: carry }
}

/** Calls `visit` for every complete line of the file from byte `from` (a line start), in order. */
export async function scanLines(
  handle: LogFileHandle,
  visit: LineVisitor,
  onRead?: (bytes: number) => void,
  chunkSize = DEFAULT_CHUNK,
  from = 0,
): Promise<ScanResult> {
  let position = from
  for await (const chunk of lineChunks(handle, onRead, chunkSize, from)) {
    if (chunk.trailing > 0) return { end: chunk.base, trailing: chunk.trailing, stopped: false }
    const { buf, base, end } = chunk
    let start = 0
    while (start < end) {
      const newline = buf.indexOf(NEWLINE, start)
      if (visit(buf, start, newline, base + start) === false)
        return { end: base + start, trailing: 0, stopped: true }
      start = newline + 1
    }
    position = base + end
  }
  return { end: position, trailing: 0, stopped: false }
}
