import { type FileHandle, open } from 'node:fs/promises'
import { join } from 'node:path'
import { type LogHead, type LogPosition, readLog, scanLog } from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import type { EventStore, StoredEvent } from '../store/event-store.js'

/**
 * Where audit reads lifecycle events from: every stored event in log order, streamed. Any
 * `EventStore` is one (its `scan()`), so export, replay and timelines work for the JSONL log and a
 * future database store alike; the HTTP layer only ever sees this interface.
 *
 * @example
 * const source: AuditSource = storeAuditSource(store)
 * for await (const event of source.scan()) console.log(event.seq, event.event)
 */
export interface AuditSource {
  scan(): AsyncIterable<StoredEvent>
  /**
   * The exact bytes the source stores for an event `scan` yielded (JSON text without the newline), when
   * they are not simply `JSON.stringify(event)` (for example the PostgreSQL tree's lines, which escape
   * U+2028/U+2029/U+0085 as the leaf does). Export writes these bytes, so they match the record's proof.
   */
  lineOf?(event: StoredEvent): Buffer | undefined
}

/**
 * An `AuditSource` that can also say where each event sits and read events back by that position.
 * Export uses it to read each selected session back in one pass without holding events in memory;
 * a source without positions is exported with bounded re-scans instead (see `runExport`).
 *
 * @example
 * const source = logAuditSource('/var/lib/care')
 * await source.visitPositions((event, position) => index.add(event.session_id, position))
 */
export interface PositionedAuditSource extends AuditSource {
  /**
   * Calls `visit` for every event in log order with its position (a callback, not an async iterator:
   * no promise per event on a pass over the whole history). Resolves with the head it reached.
   */
  visitPositions(
    visit: (event: StoredEvent, position: LogPosition) => void,
    onBytes?: (bytes: number) => void,
  ): Promise<LogHead>
  /** Opens a reader for raw lines (JSON text without the newline) by position. */
  openReader(): Promise<LineReader>
}

/**
 * Reads raw log lines back by position. `readLines` takes any number of positions and returns the
 * lines (UTF-8 bytes, without the newline) in the same order, reading nearby lines with one read. The
 * returned buffers are views into read buffers: use them before the next call.
 *
 * @example
 * const reader = await source.openReader()
 * try { const [line] = await reader.readLines([position]) } finally { await reader.close() }
 */
export interface LineReader {
  readLines(positions: readonly LogPosition[]): Promise<Buffer[]>
  close(): Promise<void>
}

/**
 * True when `source` offers positions (the JSONL log does; a bare `EventStore` does not).
 *
 * @example
 * if (isPositioned(source)) await source.visitPositions((event) => count++)
 */
export function isPositioned(source: AuditSource): source is PositionedAuditSource {
  return (
    typeof (source as PositionedAuditSource).visitPositions === 'function' &&
    typeof (source as PositionedAuditSource).openReader === 'function'
  )
}

/**
 * The audit view of the JSONL event log under `dataDir`, read without its lock (safe next to a live
 * session-manager: only lines that are complete and chain-checked are read). Every line is checked by
 * `readLog`; a corrupt line throws `LogCorruptError`.
 *
 * @example
 * const manifest = await runExport(logAuditSource('.care-data/session-manager'), filters, write)
 */
export function logAuditSource(dataDir: string): PositionedAuditSource {
  return {
    async *scan() {
      for await (const { record } of readLog<SessionLifecycleEvent>(dataDir)) yield record
    },
    visitPositions(visit, onBytes) {
      return scanLog<SessionLifecycleEvent>(dataDir, visit, onBytes ? { onBytes } : {})
    },
    async openReader() {
      return new SegmentLineReader(join(dataDir, 'events'))
    },
  }
}

/**
 * The audit view of any `EventStore` (only `scan()` is used).
 *
 * @example
 * createSessionManagerApp({ ..., audit: () => storeAuditSource(store) })
 */
export function storeAuditSource(store: Pick<EventStore, 'scan'>): AuditSource {
  return { scan: () => store.scan() }
}

/** Nearby lines closer than this are read with one pread; a run never grows past RUN_MAX bytes. */
const GAP = 8 * 1024
const RUN_MAX = 256 * 1024
/** Reused for every batch, so reading back a million lines does not allocate a million buffers. */
const ARENA_BYTES = 2 * 1024 * 1024
const NEWLINE = 0x0a
const OPEN_BRACE = 0x7b

class SegmentLineReader implements LineReader {
  readonly #handles = new Map<number, FileHandle>()
  readonly #arena = Buffer.allocUnsafe(ARENA_BYTES)

  constructor(private readonly eventsDir: string) {}

  async readLines(positions: readonly LogPosition[]): Promise<Buffer[]> {
    const lines = new Array<Buffer>(positions.length)
    const order = positions.map((_, i) => i)
    order.sort((a, b) => {
      const pa = positions[a]!
      const pb = positions[b]!
      return pa.file - pb.file || pa.offset - pb.offset
    })
    let i = 0
    let arenaUsed = 0
    while (i < order.length) {
      const first = positions[order[i]!]!
      let j = i + 1
      let runEnd = first.offset + first.length + 1
      while (j < order.length) {
        const next = positions[order[j]!]!
        const nextEnd = next.offset + next.length + 1
        if (next.file !== first.file || next.offset - runEnd > GAP || nextEnd - first.offset > RUN_MAX) break
        runEnd = Math.max(runEnd, nextEnd)
        j++
      }
      const size = runEnd - first.offset
      const fits = arenaUsed + size <= this.#arena.length
      const buf = fits ? this.#arena.subarray(arenaUsed, arenaUsed + size) : Buffer.allocUnsafe(size)
      if (fits) arenaUsed += size
      const handle = await this.#handle(first.file)
      let filled = 0
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, first.offset + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      for (let k = i; k < j; k++) {
        const index = order[k]!
        const p = positions[index]!
        const start = p.offset - first.offset
        const end = start + p.length
        // Positions come from a chain-checked scan of an append-only log; a line that moved means the
        // file was rewritten since, which must not pass silently.
        if (end >= filled || buf[start] !== OPEN_BRACE || buf[end] !== NEWLINE) {
          throw new Error(`events-${String(p.file).padStart(6, '0')}.jsonl changed under the export`)
        }
        lines[index] = buf.subarray(start, end)
      }
      i = j
    }
    return lines
  }

  async #handle(file: number): Promise<FileHandle> {
    let handle = this.#handles.get(file)
    if (!handle) {
      handle = await open(join(this.eventsDir, `events-${String(file).padStart(6, '0')}.jsonl`), 'r')
      this.#handles.set(file, handle)
    }
    return handle
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()]
    this.#handles.clear()
    await Promise.all(handles.map((h) => h.close()))
  }
}

export type { LogHead, LogPosition }
