// The key -> line positions index of one segment: in memory for the active segment, and as a sidecar
// file (`events-NNNNNN.idx`, format in docs/log-format.md) for each sealed one.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { decodeLine } from './chain.js'
import {
  errnoOf,
  type LogFileHandle,
  type LogFileSystem,
  readFully,
  readWholeFile,
  writeFully,
} from './file-system.js'
import type { Segment } from './segments.js'
import { finishInSlices, finishNow, type SlicedWork } from './sliced-work.js'

/** A line of a segment: byte offset and length without the newline. */
export interface LinePlace {
  offset: number
  length: number
}

/** Epoch ms range of a segment's records (by `recordTime`), or null when no record had a time. */
export type TimeRange = { min: number; max: number } | null

/** What an index is checked against: the segment's size and its last record (`lines` is informative). */
export interface IndexedSegmentState {
  bytes: number
  lines: number
  lastSeq: number
  lastHash: string
}

export const INDEX_FORMAT = 'care-segment-index/1'
/** Every FENCE_EVERY-th key (in sorted order) is kept in memory to find a key with one pread. */
const FENCE_EVERY = 128
const NEWLINE = 0x0a

export function indexPathOf(eventsDir: string, segment: Segment): string {
  return join(eventsDir, segment.name.replace(/\.jsonl$/, '.idx'))
}

/** The keys and times of one segment's records, in log order; what the sidecar is written from. */
export class MemoryIndex {
  readonly #keys = new Map<string, number[]>()
  #time: TimeRange = null
  lines = 0
  lastSeq = 0
  lastHash = ''

  add(keys: readonly string[], place: LinePlace, time: number | undefined): void {
    for (const key of keys) {
      const list = this.#keys.get(key)
      if (list) list.push(place.offset, place.length)
      else this.#keys.set(key, [place.offset, place.length])
    }
    if (time !== undefined && Number.isFinite(time)) {
      if (this.#time === null) this.#time = { min: time, max: time }
      else {
        if (time < this.#time.min) this.#time.min = time
        if (time > this.#time.max) this.#time.max = time
      }
    }
  }

  /** Puts `earlier` (the records before this index's first one) in front. */
  prepend(earlier: MemoryIndex): void {
    for (const [key, list] of earlier.#keys) {
      const mine = this.#keys.get(key)
      this.#keys.set(key, mine ? [...list, ...mine] : [...list])
    }
    const t = earlier.#time
    if (t && this.#time)
      this.#time = { min: Math.min(t.min, this.#time.min), max: Math.max(t.max, this.#time.max) }
    else if (t) this.#time = { ...t }
    this.lines += earlier.lines
    if (this.lastSeq === 0) {
      this.lastSeq = earlier.lastSeq
      this.lastHash = earlier.lastHash
    }
  }

  get time(): TimeRange {
    return this.#time ? { ...this.#time } : null
  }

  /** The postings of an encoded index body (checked by the caller) whose lines start before `upTo`. */
  static fromBody(body: Buffer, fenceOffset: number, upTo: number, time: TimeRange): MemoryIndex {
    const index = new MemoryIndex()
    for (let p = 0; p < fenceOffset; ) {
      const keyLength = body.readUInt16LE(p)
      const key = body.toString('utf8', p + 2, p + 2 + keyLength)
      p += 2 + keyLength
      const count = body.readUInt32LE(p)
      p += 4
      const list: number[] = []
      for (let i = 0; i < count; i++, p += 10) {
        const offset = body.readUIntLE(p, 6)
        if (offset < upTo) list.push(offset, body.readUInt32LE(p + 6))
      }
      if (list.length > 0) index.#keys.set(key, list)
    }
    index.#time = time ? { ...time } : null
    return index
  }

  find(key: string): LinePlace[] {
    const list = this.#keys.get(key)
    const places: LinePlace[] = []
    if (list) for (let i = 0; i < list.length; i += 2) places.push({ offset: list[i]!, length: list[i + 1]! })
    return places
  }

  /** The sidecar file's bytes: a JSON header line, then the sorted key postings and the fence table. */
  encode(segment: Segment, state: IndexedSegmentState): Buffer {
    return finishNow(this.#encoding(segment, state))
  }

  /**
   * The same bytes as {@link MemoryIndex.encode}, computed in slices of about `sliceMs` of CPU with the
   * event loop free in between: encoding a full active segment's index (sorting ~10^5 keys) takes
   * hundreds of milliseconds at once. Appends may go on meanwhile: what is encoded is the index as it
   * was when the call started (postings at or past `state.bytes` are left out, and the key count, line
   * count and time range are taken at the start), so `state` must describe the index at the call.
   *
   * @example
   * const bytes = await index.encodeInSlices(segment, { bytes, lines: index.lines, lastSeq, lastHash })
   */
  encodeInSlices(segment: Segment, state: IndexedSegmentState, sliceMs = 8): Promise<Buffer> {
    return finishInSlices(this.#encoding(segment, state), sliceMs)
  }

  /** The encoder; it yields every few thousand units of work, where a sliced caller may pause. */
  *#encoding(segment: Segment, state: IndexedSegmentState): SlicedWork<Buffer> {
    const upTo = state.bytes
    const time = this.#time ? { ...this.#time } : null
    // Postings are appended in log order, so those of records at or past `upTo` (appended after the
    // call started) are a suffix of each list; a key first seen after the start has only such postings.
    const counts = new Map<string, number>()
    const unsorted: string[] = []
    let surrogates = false
    let visited = 0
    for (const [key, list] of this.#keys) {
      let count = list.length / 2
      while (count > 0 && list[(count - 1) * 2]! >= upTo) count--
      if (count > 0) {
        counts.set(key, count)
        unsorted.push(key)
        surrogates ||= SURROGATE.test(key)
      }
      if (++visited % STEP === 0) yield
    }
    const keys = yield* sortedInSteps(unsorted, surrogates)
    const keyBytes = new Array<number>(keys.length)
    let fenceBytes = 0
    let postingBytes = 0
    for (let i = 0; i < keys.length; i++) {
      const length = Buffer.byteLength(keys[i]!, 'utf8')
      keyBytes[i] = length
      if (i % FENCE_EVERY === 0) fenceBytes += 2 + length + 6
      postingBytes += 2 + length + 4 + counts.get(keys[i]!)! * 10
      if (i % STEP === STEP - 1) yield
    }
    // One buffer, written in place (a buffer per key joined by a concat took several times longer).
    const body = Buffer.allocUnsafe(postingBytes + fenceBytes)
    let p = 0
    let fence = postingBytes
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const length = keyBytes[i]!
      if (i % FENCE_EVERY === 0) {
        body.writeUInt16LE(length, fence)
        body.write(key, fence + 2, length, 'utf8')
        body.writeUIntLE(p, fence + 2 + length, 6)
        fence += 2 + length + 6
      }
      const list = this.#keys.get(key)!
      const count = counts.get(key)!
      body.writeUInt16LE(length, p)
      body.write(key, p + 2, length, 'utf8')
      p += 2 + length
      body.writeUInt32LE(count, p)
      p += 4
      for (let j = 0; j < count * 2; j += 2) {
        body.writeUIntLE(list[j]!, p, 6)
        body.writeUInt32LE(list[j + 1]!, p + 6)
        p += 10
      }
      if (i % STEP === STEP - 1) yield
    }
    const hash = createHash('sha256')
    for (let at = 0; at < body.length; at += HASH_CHUNK) {
      hash.update(body.subarray(at, at + HASH_CHUNK))
      yield
    }
    const header = {
      format: INDEX_FORMAT,
      segment: segment.name,
      bytes: state.bytes,
      lines: state.lines,
      last_seq: state.lastSeq,
      last_hash: state.lastHash,
      time,
      keys: keys.length,
      fence_every: FENCE_EVERY,
      fence_offset: postingBytes,
      fence_count: Math.ceil(keys.length / FENCE_EVERY),
      body_bytes: body.length,
      body_sha256: hash.digest('hex'),
    }
    return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body])
  }
}

/** Units of work (keys visited, written or merged) between two points where an encoder may pause. */
const STEP = 2048
const HASH_CHUNK = 1 << 20
/** Keys sorted per chunk before the chunks are merged (a chunk's sort is the longest single step). */
const SORT_CHUNK = 4096

/**
 * `keys` sorted by their UTF-8 bytes, the order the sidecar's fences are searched in.
 *
 * @example
 * sortedByUtf8Bytes(['\u{1F600}', '\uFFFD']) // ['\uFFFD', '\u{1F600}']: byte order, not UTF-16 order
 */
export function sortedByUtf8Bytes(keys: string[]): string[] {
  return finishNow(
    sortedInSteps(
      keys,
      keys.some((key) => SURROGATE.test(key)),
    ),
  )
}

/**
 * Sorts `keys` by their UTF-8 bytes (`surrogates`: whether any key holds a surrogate). JavaScript's
 * default string order compares UTF-16 code units, which is UTF-8 byte order unless a key holds a
 * surrogate pair (U+10000 and above sort before U+E000..U+FFFF in UTF-16, after them in UTF-8):
 * only then are keys compared as bytes, a native call per comparison. Chunks are sorted, then merged
 * pairwise, yielding between steps.
 */
function* sortedInSteps(keys: string[], surrogates: boolean): SlicedWork<string[]> {
  const bytes = surrogates ? new Map(keys.map((key) => [key, Buffer.from(key, 'utf8')])) : undefined
  const before = bytes
    ? (a: string, b: string) => Buffer.compare(bytes.get(a)!, bytes.get(b)!) < 0
    : (a: string, b: string) => a < b
  let runs: string[][] = []
  for (let at = 0; at < keys.length; at += SORT_CHUNK) {
    const chunk = keys.slice(at, at + SORT_CHUNK)
    if (bytes) chunk.sort((a, b) => Buffer.compare(bytes.get(a)!, bytes.get(b)!))
    else chunk.sort()
    runs.push(chunk)
    yield
  }
  while (runs.length > 1) {
    const merged: string[][] = []
    for (let r = 0; r < runs.length; r += 2) {
      const a = runs[r]!
      const b = runs[r + 1]
      if (!b) {
        merged.push(a)
        continue
      }
      const out = new Array<string>(a.length + b.length)
      let i = 0
      let j = 0
      for (let k = 0; k < out.length; k++) {
        out[k] = j >= b.length || (i < a.length && !before(b[j]!, a[i]!)) ? a[i++]! : b[j++]!
        if (k % STEP === STEP - 1) yield
      }
      merged.push(out)
    }
    runs = merged
  }
  return runs[0] ?? []
}
const SURROGATE = /[\uD800-\uDFFF]/

interface IndexHeader {
  format: string
  segment: string
  bytes: number
  lines: number
  last_seq: number
  last_hash: string
  time: TimeRange
  keys: number
  fence_every: number
  fence_offset: number
  fence_count: number
  body_bytes: number
  body_sha256: string
}

/** Why a sidecar index was not used (then it is rebuilt from its segment). */
export class IndexInvalidError extends Error {
  override readonly name = 'IndexInvalidError'
}

/**
 * A sealed segment's sidecar index, checked when loaded (body checksum, header against the segment's
 * size and last record, every position inside the segment) and then answered with one pread per key.
 */
export class SidecarIndex {
  readonly header: IndexHeader
  readonly #fences: { key: Buffer; at: number }[]
  readonly #bodyStart: number
  readonly #path: string
  /** One read handle, kept while the index is loaded; closed by `close()` once no find uses it. */
  #handle: Promise<LogFileHandle> | undefined
  #finds = 0
  #closing = false

  private constructor(
    path: string,
    header: IndexHeader,
    bodyStart: number,
    fences: { key: Buffer; at: number }[],
  ) {
    this.#path = path
    this.header = header
    this.#bodyStart = bodyStart
    this.#fences = fences
  }

  get time(): TimeRange {
    return this.header.time
  }

  /** Loads and checks `path` against `state` (the segment as it is now); IndexInvalidError if unusable. */
  static async load(
    fs: LogFileSystem,
    path: string,
    segment: Segment,
    state: IndexedSegmentState,
  ): Promise<SidecarIndex> {
    let data: Buffer
    try {
      const handle = await fs.open(path, 'read')
      try {
        data = await readFully(handle, await handle.size(), 0)
      } finally {
        await handle.close()
      }
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new IndexInvalidError(`${path} is missing`)
      throw err
    }
    const { header, body } = checkedIndexFile(path, data, segment)
    if (
      header.bytes !== state.bytes ||
      header.last_seq !== state.lastSeq ||
      header.last_hash !== state.lastHash
    ) {
      throw new IndexInvalidError(
        `${path}: made for ${header.bytes} bytes ending at seq ${header.last_seq}, ` +
          `the segment has ${state.bytes} bytes ending at seq ${state.lastSeq}`,
      )
    }
    let p = checkPostings(path, body, header, 'segment')
    const fences: { key: Buffer; at: number }[] = []
    const fenceCount = Number.isSafeInteger(header.fence_count) ? header.fence_count : -1
    if (fenceCount < 0) throw new IndexInvalidError(`${path}: fence_count is not a count`)
    for (let i = 0; i < fenceCount; i++) {
      if (p + 2 > body.length) throw new IndexInvalidError(`${path}: fence table runs past the body`)
      const keyLength = body.readUInt16LE(p)
      if (p + 2 + keyLength + 6 > body.length) {
        throw new IndexInvalidError(`${path}: fence table runs past the body`)
      }
      const key = Buffer.from(body.subarray(p + 2, p + 2 + keyLength))
      const at = body.readUIntLE(p + 2 + keyLength, 6)
      if (at >= header.fence_offset) throw new IndexInvalidError(`${path}: fence points past the postings`)
      fences.push({ key, at })
      p += 2 + keyLength + 6
    }
    if (p !== body.length) throw new IndexInvalidError(`${path}: trailing bytes after the fence table`)
    return new SidecarIndex(path, header, data.length - body.length, fences)
  }

  /** Closes the read handle (at once, or after the finds in progress). */
  async close(): Promise<void> {
    this.#closing = true
    if (this.#finds > 0) return
    const handle = this.#handle
    this.#handle = undefined
    await handle?.then((h) => h.close()).catch(() => {})
  }

  /** The positions indexed under `key`, oldest first (reads one block of postings). */
  async find(fs: LogFileSystem, key: string): Promise<LinePlace[]> {
    const wanted = Buffer.from(key, 'utf8')
    const fences = this.#fences
    // The last fence whose key is <= wanted.
    let lo = 0
    let hi = fences.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (Buffer.compare(fences[mid]!.key, wanted) <= 0) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    if (found === -1) return []
    const from = fences[found]!.at
    const to = found + 1 < fences.length ? fences[found + 1]!.at : this.header.fence_offset
    let block: Buffer
    this.#finds++
    try {
      this.#handle ??= fs.open(this.#path, 'read')
      block = await readFully(await this.#handle, to - from, this.#bodyStart + from)
    } catch (err) {
      // Drop a failed handle: the next find opens the file again.
      const failed = this.#handle
      this.#handle = undefined
      void failed?.then((h) => h.close()).catch(() => {})
      throw err
    } finally {
      this.#finds--
      if (this.#closing && this.#finds === 0) void this.close()
    }
    if (block.length !== to - from) throw new IndexInvalidError(`${this.#path}: shorter than when loaded`)
    for (let p = 0; p < block.length; ) {
      const keyLength = block.readUInt16LE(p)
      const order = Buffer.compare(block.subarray(p + 2, p + 2 + keyLength), wanted)
      p += 2 + keyLength
      const count = block.readUInt32LE(p)
      p += 4
      if (order === 0) {
        const places: LinePlace[] = []
        for (let i = 0; i < count; i++, p += 10) {
          places.push({ offset: block.readUIntLE(p, 6), length: block.readUInt32LE(p + 6) })
        }
        return places
      }
      if (order > 0) return []
      p += count * 10
    }
    return []
  }
}

/**
 * `events-NNNNNN.active.idx`: the active segment's index up to a point (written at snapshot time), so
 * a start resuming inside the active segment does not re-read the segment's lines before the point.
 */
export function activeIndexPathOf(eventsDir: string, segment: Segment): string {
  return join(eventsDir, segment.name.replace(/\.jsonl$/, '.active.idx'))
}

/**
 * Loads the active segment's index file `path` (see {@link activeIndexPathOf}) for the lines of
 * `segment` before `upTo`: undefined when there is none; IndexInvalidError when it is unusable (not
 * this format or segment, truncated or a body checksum mismatch, covering more bytes than the segment
 * has, the record ending where it says its prefix ends is not the one it names (another log, a
 * rewritten segment), or a position outside its prefix). `from` is where the lines it does not cover
 * begin (its prefix's end, or `upTo` when it covers more).
 */
export async function loadActiveIndex(
  fs: LogFileSystem,
  path: string,
  segment: Segment,
  upTo: number,
): Promise<{ index: MemoryIndex; from: number } | undefined> {
  const data = await readWholeFile(fs, path)
  if (data === undefined) return undefined
  const { header, body } = checkedIndexFile(path, data, segment)
  if (!Number.isSafeInteger(header.bytes) || header.bytes < 1 || !Number.isSafeInteger(header.fence_offset)) {
    throw new IndexInvalidError(`${path}: covers no bytes`)
  }
  const problem = await recordEndingAt(fs, segment, header.bytes, header.last_seq, header.last_hash)
  if (problem) throw new IndexInvalidError(`${path}: ${problem}`)
  checkPostings(path, body, header, 'prefix')
  const index = MemoryIndex.fromBody(body, header.fence_offset, upTo, header.time)
  return { index, from: Math.min(header.bytes, upTo) }
}

/**
 * The header and body of an index file (`.idx` or `.active.idx`) for `segment`, checked: the header is
 * JSON of our format and names the segment, and the body has the length and SHA-256 the header gives.
 * Throws IndexInvalidError naming `path` otherwise.
 */
function checkedIndexFile(
  path: string,
  data: Buffer,
  segment: Segment,
): { header: IndexHeader; body: Buffer } {
  const newline = data.indexOf(NEWLINE)
  let header: IndexHeader
  try {
    header = JSON.parse(data.toString('utf8', 0, newline === -1 ? 0 : newline)) as IndexHeader
  } catch {
    throw new IndexInvalidError(`${path}: header is not JSON`)
  }
  const body = data.subarray(newline + 1)
  if (header.format !== INDEX_FORMAT) throw new IndexInvalidError(`${path}: unknown format ${header.format}`)
  if (header.segment !== segment.name) throw new IndexInvalidError(`${path}: indexes ${header.segment}`)
  if (body.length !== header.body_bytes) {
    throw new IndexInvalidError(`${path}: body is ${body.length} bytes, header says ${header.body_bytes}`)
  }
  if (createHash('sha256').update(body).digest('hex') !== header.body_sha256) {
    throw new IndexInvalidError(`${path}: body checksum does not match`)
  }
  return { header, body }
}

/**
 * Walks the postings of a checked index body once: `header.fence_offset` inside the body (the header is
 * not covered by the body checksum), every entry well-formed, inside the postings and ending before
 * `header.bytes` (the end of the segment, or of the prefix an active index covers). Returns the offset
 * of the fence table.
 */
function checkPostings(
  path: string,
  body: Buffer,
  header: IndexHeader,
  covers: 'segment' | 'prefix',
): number {
  const end = header.fence_offset
  if (!Number.isSafeInteger(end) || end < 0 || end > body.length) {
    throw new IndexInvalidError(`${path}: fence_offset ${end} is outside the ${body.length}-byte body`)
  }
  const overrun = () => new IndexInvalidError(`${path}: postings overrun the fence table`)
  let p = 0
  while (p < end) {
    if (p + 2 > end) throw overrun()
    const keyLength = body.readUInt16LE(p)
    p += 2 + keyLength
    if (p + 4 > end) throw overrun()
    const count = body.readUInt32LE(p)
    p += 4
    if (p + count * 10 > end) throw overrun()
    for (let i = 0; i < count; i++, p += 10) {
      if (body.readUIntLE(p, 6) + body.readUInt32LE(p + 6) >= header.bytes) {
        throw new IndexInvalidError(`${path}: a position points past its ${covers}`)
      }
    }
  }
  return p
}

/**
 * The bytes of the line (without its newline) that ends at byte `end` of an open segment, read from the
 * end backwards (one pread of at most 64 KiB, more only for a longer line); undefined when no line ends
 * there.
 */
async function lineEndingAt(handle: LogFileHandle, end: number): Promise<Buffer | undefined> {
  if (end === 0) return undefined
  for (let window = Math.min(end, 64 * 1024); ; window = Math.min(end, window * 4)) {
    const buf = await readFully(handle, window, end - window)
    if (buf.length !== window || buf[window - 1] !== NEWLINE) return undefined
    const previous = buf.lastIndexOf(NEWLINE, window - 2)
    if (previous === -1 && window < end) continue
    return buf.subarray(previous + 1, window - 1)
  }
}

/**
 * Why the line of `segment` ending (with its newline) at byte `end` is not the record `seq`/`hash`
 * (re-hashed), or undefined when it is.
 */
async function recordEndingAt(
  fs: LogFileSystem,
  segment: Segment,
  end: number,
  seq: number,
  hash: string,
): Promise<string | undefined> {
  const handle = await fs.open(segment.path, 'read')
  try {
    const size = await handle.size()
    if (end > size) return `covers ${end} bytes, the segment has ${size}`
    const line = await lineEndingAt(handle, end)
    if (line === undefined) return `no line ends at byte ${end}`
    const record = decodeLine(line, 0, line.length)
    if (typeof record === 'string') return `the line ending at byte ${end}: ${record}`
    if (record.seq !== seq || record.hash !== hash) {
      return `the line ending at byte ${end} is seq ${record.seq}, not the indexed seq ${seq} (another log?)`
    }
    return undefined
  } finally {
    await handle.close()
  }
}

/**
 * The header line of `segment`'s sidecar index (one pread of at most 4 KiB), when it is there, parses,
 * has this format, names `segment` and was made for the segment as it is now: its size and its last
 * record's seq and hash (read from the segment's tail, as `SidecarIndex.load` checks them), so a stale
 * index of the same size is not trusted; else undefined. Only for skipping segments by time before
 * loading (and fully checking) an index.
 */
export async function readIndexHeader(
  fs: LogFileSystem,
  path: string,
  segment: Segment,
): Promise<Pick<IndexHeader, 'bytes' | 'time'> | undefined> {
  try {
    const data = await readWholeFile(fs, path, HEADER_MAX_BYTES)
    const newline = data?.indexOf(NEWLINE) ?? -1
    if (data === undefined || newline === -1) return undefined
    const header = JSON.parse(data.toString('utf8', 0, newline)) as Partial<IndexHeader>
    if (header.format !== INDEX_FORMAT || header.segment !== segment.name) return undefined
    const tail = await segmentTail(fs, segment)
    if (
      tail === undefined ||
      header.bytes !== tail.bytes ||
      header.last_seq !== tail.lastSeq ||
      header.last_hash !== tail.lastHash
    ) {
      return undefined
    }
    const time = header.time
    const valid =
      time === null ||
      (typeof time === 'object' &&
        time !== undefined &&
        Number.isFinite(time.min) &&
        Number.isFinite(time.max))
    return valid ? { bytes: header.bytes, time: time ?? null } : undefined
  } catch {
    return undefined
  }
}

/** A sidecar header line is far shorter than this (format, name, counts, two hashes, a time range). */
const HEADER_MAX_BYTES = 4096

/** Write-to-temp, fsync, rename, fsync dir: a crash leaves the old file, the new one or none, never half. */
export async function writeFileAtomically(
  fs: LogFileSystem,
  dir: string,
  path: string,
  data: Buffer,
): Promise<void> {
  const temp = `${path}.tmp`
  const handle: LogFileHandle = await fs.open(temp, 'write')
  try {
    await handle.truncate(0)
    await writeFully(handle, data, 0)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, path)
  await fs.syncDir(dir)
}

/**
 * The size and last record of a segment, read from its tail (one pread of at most 64 KiB, more only for
 * a longer last line): what a sidecar index is checked against. Undefined for an empty segment or one
 * whose last line does not parse.
 */
export async function segmentTail(
  fs: LogFileSystem,
  segment: Segment,
): Promise<IndexedSegmentState | undefined> {
  const handle = await fs.open(segment.path, 'read')
  try {
    const size = await handle.size()
    if (size === 0) return undefined
    const line = await lineEndingAt(handle, size)
    if (line === undefined) return undefined
    try {
      const record = JSON.parse(line.toString('utf8')) as { seq?: unknown; hash?: unknown }
      if (typeof record.seq !== 'number' || typeof record.hash !== 'string') return undefined
      return { bytes: size, lines: 0, lastSeq: record.seq, lastHash: record.hash }
    } catch {
      return undefined
    }
  } finally {
    await handle.close()
  }
}
