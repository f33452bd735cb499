// The per-segment digest (`events-NNNNNN.digest.json`, format in docs/log-format.md) and the one pass over
// a sealed segment that computes it, optionally re-hashing and linking every line on the way.
import { createHash, type Hash } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type ChainedRecord, decodeLine } from './chain.js'
import { type LogFileSystem, readWholeFile } from './file-system.js'
import { lineChunks } from './line-scanner.js'
import type { LinePlace, TimeRange } from './segment-index.js'
import { writeFileAtomically } from './segment-index.js'
import type { Segment } from './segments.js'

export const DIGEST_FORMAT = 'care-segment-digest/1'
/** The digest also hashes each BLOCK_BYTES block, so a mismatch is found to within one block. */
export const DIGEST_BLOCK_BYTES = 1024 * 1024

/** The digest of one sealed segment, as stored in its `.digest.json` sidecar. */
export interface SegmentDigest {
  format: string
  segment: string
  bytes: number
  lines: number
  sha256: string
  block_bytes: number
  blocks: string[]
  first: { seq: number; prev_hash: string; hash: string }
  last: { seq: number; hash: string }
  time: TimeRange
  /** sha256 of this object's canonical JSON without `check`: tells a damaged digest from a damaged segment. */
  check: string
}

export function digestPathOf(eventsDir: string, segment: Segment): string {
  return join(eventsDir, segment.name.replace(/\.jsonl$/, '.digest.json'))
}

function checkOf(digest: Omit<SegmentDigest, 'check'>): string {
  const { check: _ignored, ...rest } = digest as SegmentDigest
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex')
}

/** `digest` with `check` recomputed (after a field such as `time` was filled in). */
export function withCheck(digest: SegmentDigest): SegmentDigest {
  const { check: _ignored, ...rest } = digest
  return { ...rest, check: checkOf(rest) }
}

/** A damaged line found by a verifying pass: 1-based line in the segment, and why. */
export interface SegmentProblem {
  line: number
  offset: number
  reason: string
}

export interface SegmentPass {
  digest: SegmentDigest
  /** Set by a verifying pass when a line fails its hash or does not link to the line before it. */
  problem?: SegmentProblem
  /** 1-based line holding the first byte of each block (to name the line of a block mismatch). */
  blockLines: number[]
}

export interface SegmentPassOptions {
  /** Re-hash every line and check seq/prev_hash links inside the segment (else only first and last). */
  verify: boolean
  /** Called for every line (parsed; hash-checked when `verify`). */
  onRecord?: (record: ChainedRecord, place: LinePlace) => void
  recordTime?: ((record: ChainedRecord) => number) | undefined
  /** Read at most this many bytes per second (background scrub). */
  bytesPerSecond?: number | undefined
  /** Called after each chunk with the bytes read so far. */
  onProgress?: (bytes: number) => void
  signal?: AbortSignal | undefined
  chunkSize?: number
}

/**
 * Reads a sealed segment once and computes its digest. With `verify` every line is re-hashed and linked
 * (seq + 1, prev_hash) to the one before; the first problem is returned (the digest is then of the bytes
 * as they are, and must not be stored).
 */
export async function passSegment(
  fs: LogFileSystem,
  segment: Segment,
  options: SegmentPassOptions,
): Promise<SegmentPass> {
  const handle = await fs.open(segment.path, 'read')
  const whole = createHash('sha256')
  const blocks: string[] = []
  const blockLines: number[] = []
  let block: Hash = createHash('sha256')
  let blockFill = 0
  let lines = 0
  let first: SegmentDigest['first'] | undefined
  let last: SegmentDigest['last'] | undefined
  let time: TimeRange = null
  let problem: SegmentProblem | undefined
  let bytes = 0
  const started = performance.now()
  const feed = (data: Buffer) => {
    whole.update(data)
    for (let at = 0; at < data.length; ) {
      const n = Math.min(DIGEST_BLOCK_BYTES - blockFill, data.length - at)
      block.update(data.subarray(at, at + n))
      blockFill += n
      at += n
      if (blockFill === DIGEST_BLOCK_BYTES) {
        blocks.push(block.digest('hex'))
        block = createHash('sha256')
        blockFill = 0
      }
    }
  }
  try {
    let lastLine: { buf: Buffer; offset: number } | undefined
    const parseAll = options.verify || options.onRecord !== undefined || options.recordTime !== undefined
    for await (const chunk of lineChunks(handle, undefined, options.chunkSize)) {
      options.signal?.throwIfAborted()
      if (chunk.trailing > 0) {
        problem ??= { line: lines + 1, offset: chunk.base, reason: 'sealed segment ends without a newline' }
        feed(chunk.buf.subarray(0, chunk.trailing))
        bytes += chunk.trailing
        break
      }
      const { buf, base, end } = chunk
      let start = 0
      while (start < end) {
        const newline = buf.indexOf(0x0a, start)
        lines++
        const offset = base + start
        // Block boundaries inside this line (or at its start) belong to this line.
        while (blockLines.length * DIGEST_BLOCK_BYTES <= base + newline) blockLines.push(lines)
        if ((parseAll || lines === 1) && problem === undefined) {
          const record = decodeLine(buf, start, newline, options.verify || lines === 1)
          let reason: string | undefined
          if (typeof record === 'string') reason = record
          else if (options.verify && last && record.seq !== last.seq + 1)
            reason = `seq is ${record.seq}, expected ${last.seq + 1}`
          else if (options.verify && last && record.prev_hash !== last.hash)
            reason = "prev_hash does not match the previous line's hash"
          if (reason !== undefined) problem = { line: lines, offset, reason }
          else {
            const ok = record as ChainedRecord
            if (lines === 1) first = { seq: ok.seq, prev_hash: ok.prev_hash, hash: ok.hash }
            last = { seq: ok.seq, hash: ok.hash }
            const t = options.recordTime?.(ok)
            if (t !== undefined && Number.isFinite(t)) {
              time = time ? { min: Math.min(time.min, t), max: Math.max(time.max, t) } : { min: t, max: t }
            }
            options.onRecord?.(ok, { offset, length: newline - start })
          }
        }
        start = newline + 1
      }
      if (!parseAll && end > 0) {
        // Keep the chunk's last line for `last` (the buffer is reused).
        const lineStart = buf.lastIndexOf(0x0a, end - 2) + 1
        lastLine = { buf: Buffer.from(buf.subarray(lineStart, end - 1)), offset: base + lineStart }
      }
      feed(buf.subarray(0, end))
      bytes = base + end
      options.onProgress?.(bytes)
      if (options.bytesPerSecond && options.bytesPerSecond > 0) {
        const due = (bytes / options.bytesPerSecond) * 1000 - (performance.now() - started)
        if (due > 0) await sleep(due, undefined, { signal: options.signal })
      }
    }
    if (lastLine && !parseAll && problem === undefined) {
      const record = decodeLine(lastLine.buf, 0, lastLine.buf.length)
      if (typeof record === 'string') problem = { line: lines, offset: lastLine.offset, reason: record }
      else last = { seq: record.seq, hash: record.hash }
    }
  } finally {
    await handle.close()
  }
  if (blockFill > 0) blocks.push(block.digest('hex'))
  const body = {
    format: DIGEST_FORMAT,
    segment: segment.name,
    bytes,
    lines,
    sha256: whole.digest('hex'),
    block_bytes: DIGEST_BLOCK_BYTES,
    blocks,
    first: first ?? { seq: 0, prev_hash: '', hash: '' },
    last: last ?? { seq: 0, hash: '' },
    time,
  }
  const digest: SegmentDigest = { ...body, check: checkOf(body as SegmentDigest) }
  if (lines === 0) problem ??= { line: 1, offset: 0, reason: 'sealed segment is empty' }
  return { digest, blockLines, ...(problem ? { problem } : {}) }
}

/** The digest stored for `segment`: `missing`, `corrupt` (unparsable or failing its own check), or it. */
export async function readDigest(
  fs: LogFileSystem,
  eventsDir: string,
  segment: Segment,
): Promise<SegmentDigest | 'missing' | 'corrupt'> {
  const bytes = await readWholeFile(fs, digestPathOf(eventsDir, segment))
  if (bytes === undefined) return 'missing'
  const text = bytes.toString('utf8')
  try {
    const digest = JSON.parse(text) as SegmentDigest
    if (digest.format !== DIGEST_FORMAT || digest.segment !== segment.name) return 'corrupt'
    if (!Array.isArray(digest.blocks) || checkOf(digest) !== digest.check) return 'corrupt'
    return digest
  } catch {
    return 'corrupt'
  }
}

export async function writeDigest(
  fs: LogFileSystem,
  eventsDir: string,
  segment: Segment,
  digest: SegmentDigest,
): Promise<void> {
  await writeFileAtomically(
    fs,
    eventsDir,
    digestPathOf(eventsDir, segment),
    Buffer.from(`${JSON.stringify(digest)}\n`),
  )
}

/**
 * Where `pass` (of the segment as it is now) departs from `stored`: undefined when the bytes match,
 * else the 1-based line holding the first differing block (or the first line, for a size change there).
 */
export function firstMismatch(
  stored: SegmentDigest,
  pass: SegmentPass,
): { line: number; reason: string } | undefined {
  if (stored.sha256 === pass.digest.sha256 && stored.bytes === pass.digest.bytes) return undefined
  const blocks = Math.max(stored.blocks.length, pass.digest.blocks.length)
  for (let b = 0; b < blocks; b++) {
    if (stored.blocks[b] !== pass.digest.blocks[b]) {
      const line = pass.blockLines[b] ?? pass.digest.lines
      return {
        line,
        reason:
          `segment bytes differ from its digest in block ${b} (bytes ${b * stored.block_bytes}..` +
          `${(b + 1) * stored.block_bytes}); size ${pass.digest.bytes}, digest says ${stored.bytes}`,
      }
    }
  }
  return { line: 1, reason: 'segment sha256 differs from its digest' }
}
