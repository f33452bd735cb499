import { type ChainedRecord, decodeLine } from './chain.js'
import type { LogHead } from './recovery.js'
import type { VerifyRules } from './verify.js'
import { hashId, IdWriter } from './verify-pairs.js'

// The per-line half of `verifyLog`: everything that needs only the line itself or the line before it in
// the same chunk (JSON, hash, seq/prev_hash and the rules' timestamp against the previous line, the
// rules' field presence, the expected head, an optional record check). It runs in worker threads for big
// logs, so it returns plain cloneable data; `verifyLog` does the rest (line 0 against the previous chunk,
// the rules' open/close pairing state) in order.

const NEWLINE = 0x0a

/** Where in a line's checks a problem was found; a lower stage of the same line is reported first. */
export const STAGE_DECODE = 1
/** seq, prev_hash and timestamp against the previous line (for line 0 of a chunk: done by the caller). */
export const STAGE_LINK = 2
export const STAGE_FIELDS = 3
/** Pairing state is the caller's (stage 4); these come after it on the same line. */
export const STAGE_HEAD = 5
export const STAGE_RECORD = 6

/** A per-record check run where lines are parsed: returns the reason the record is bad, or undefined. */
export type RecordCheck = (record: ChainedRecord) => string | undefined

export interface ChunkProblem {
  /** 0-based line index within the chunk. */
  index: number
  stage: number
  reason: string
}

/**
 * What the sequential part of `verifyLog` needs from one chunk. Lines `[0, checked)` passed every
 * check here; `problem`, if any, is at line `checked`.
 */
export interface ChunkResult {
  checked: number
  /** Line 0's chain fields, for the caller's check against the previous chunk (set unless line 0 did not decode). */
  firstSeq: number
  firstPrevHash: string
  firstTimestamp: string | null
  /** The last checked line's fields (meaningless when `checked` is 0). */
  lastSeq: number
  lastHash: string
  lastTimestamp: string
  /** Event kind per checked line, as an index into `kindNames`; `kindCounts` are their totals. */
  kinds: Uint32Array
  kindNames: string[]
  kindCounts: number[]
  /**
   * The `sessions` opening / closing lines of the rules' pairing, in order: `sessionMarks[i]` is
   * `line * 2 + (close ? 1 : 0)`, `sessionKeys[2i, 2i + 1]` the key's hash (`hashId`),
   * `sessionIdBytes[sessionIdEnds[i - 1] ?? 0, sessionIdEnds[i])` the key (`IdWriter`).
   */
  sessions: number
  sessionMarks: Int32Array
  sessionKeys: Int32Array
  sessionIdEnds: Int32Array
  sessionIdBytes: Uint8Array
  problem: ChunkProblem | null
}

export interface ChunkCheckOptions {
  /** Seed of the session id hash; the same for every chunk of one run. */
  seed: number
  expectedHead?: LogHead | undefined
  checkRecord?: RecordCheck | undefined
  rules?: VerifyRules | undefined
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ`, the one timestamp form whose text order is its time order. */
const CANONICAL_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/**
 * The reason a line breaks the chain after a line with `seq` and `hash`, then (when the rules name a
 * timestamp field) the reason its `timestamp` goes back before `lastTimestamp` ('' before the first
 * line), or undefined. Shared by the chunk pass and `verifyLog` so both word problems alike.
 */
export function linkProblem(
  recordSeq: number,
  recordPrevHash: string,
  timestamp: unknown,
  seq: number,
  hash: string,
  lastTimestamp: string,
  timestampField: string | undefined,
): string | undefined {
  if (recordSeq !== seq + 1) return `seq is ${recordSeq}, expected ${seq + 1}`
  if (recordPrevHash !== hash) return "prev_hash does not match the previous line's hash"
  if (timestampField === undefined) return undefined
  if (typeof timestamp !== 'string') return `${timestampField} is missing`
  // ISO-8601 UTC with milliseconds (what the writers produce) sorts as text; anything else, including
  // other 24-character forms `Date.parse` accepts (`2026-01-02 05:00:00.000Z`), is compared as a date.
  if (CANONICAL_UTC.test(timestamp) && CANONICAL_UTC.test(lastTimestamp)) {
    if (timestamp < lastTimestamp) return `timestamp ${timestamp} is before the previous ${lastTimestamp}`
    return undefined
  }
  const time = Date.parse(timestamp)
  if (Number.isNaN(time)) return `timestamp ${timestamp} is not a date`
  if (lastTimestamp !== '' && time < Date.parse(lastTimestamp)) {
    return `timestamp ${timestamp} is before the previous ${lastTimestamp}`
  }
  return undefined
}

/**
 * Checks the whole lines in `buf[0, end)` (`end` just past a newline) and stops at the first problem.
 * Writes into `buf` only transiently (see `decodeLine`).
 */
export function checkChunk(buf: Buffer, end: number, options: ChunkCheckOptions): ChunkResult {
  const expected = options.expectedHead
  const checkRecord = options.checkRecord
  const timestampField = options.rules?.timestampField
  const kindField = options.rules?.kindField
  const pairing = options.rules?.pairing
  // A line that passes carries a 64-character hash, so no chunk holds more than end / 64 of them. The
  // per-line arrays exist only for the rules that fill them (a worker's result is copied back to the
  // calling thread, and without rules they were most of what it copied), and are returned trimmed.
  const maxLines = (end >>> 6) + 1
  const kinds = new Uint32Array(kindField === undefined ? 0 : maxLines)
  const kindNames: string[] = []
  const kindCounts: number[] = []
  const seed = options.seed
  let sessions = 0
  const pairLines = pairing ? maxLines : 0
  const sessionMarks = new Int32Array(pairLines)
  const sessionKeys = new Int32Array(pairLines * 2)
  const sessionIdEnds = new Int32Array(pairLines)
  const ids = new IdWriter(pairing ? Math.min(end, 256 * 1024) : 0)
  let firstSeq = 0
  let firstPrevHash = ''
  let firstTimestamp: string | null = null
  let seq = 0
  let hash = ''
  let lastTimestamp = ''
  // One-entry cache: consecutive lines mostly share a kind, and a string compare beats a Map lookup.
  let lastKind = ''
  let lastKindIndex = -1
  let problem: ChunkProblem | null = null
  let index = 0
  let start = 0
  while (start < end) {
    const newline = buf.indexOf(NEWLINE, start)
    const decoded = decodeLine(buf, start, newline)
    if (typeof decoded === 'string') {
      problem = { index, stage: STAGE_DECODE, reason: decoded }
      break
    }
    const record = decoded
    const timestamp = timestampField === undefined ? undefined : record[timestampField]
    if (index === 0) {
      firstSeq = record.seq
      firstPrevHash = record.prev_hash
      firstTimestamp = typeof timestamp === 'string' ? timestamp : null
    } else {
      const reason = linkProblem(
        record.seq,
        record.prev_hash,
        timestamp,
        seq,
        hash,
        lastTimestamp,
        timestampField,
      )
      if (reason !== undefined) {
        problem = { index, stage: STAGE_LINK, reason }
        break
      }
    }
    const event = kindField === undefined ? '' : record[kindField]
    if (typeof event !== 'string') {
      problem = { index, stage: STAGE_FIELDS, reason: `${kindField} is missing` }
      break
    }
    if (pairing) {
      const key = record[pairing.keyField]
      if (typeof key !== 'string') {
        problem = { index, stage: STAGE_FIELDS, reason: `${pairing.keyField} is missing` }
        break
      }
      const opens = event === pairing.open
      if (opens || event === pairing.close) {
        sessionMarks[sessions] = opens ? index * 2 : index * 2 + 1
        hashId(key, seed, sessionKeys, sessions * 2)
        sessionIdEnds[sessions] = ids.write(key)
        sessions++
      }
    }
    if (expected && record.seq === expected.seq && record.hash !== expected.hash) {
      problem = {
        index,
        stage: STAGE_HEAD,
        reason: `hash differs from the expected head at seq ${expected.seq}`,
      }
      break
    }
    if (checkRecord) {
      const reason = checkRecord(record)
      if (reason !== undefined) {
        problem = { index, stage: STAGE_RECORD, reason }
        break
      }
    }
    if (kindField !== undefined && event !== lastKind) {
      lastKind = event
      lastKindIndex = kindNames.indexOf(event)
      if (lastKindIndex === -1) {
        lastKindIndex = kindNames.length
        kindNames.push(event)
        kindCounts.push(0)
      }
    }
    if (kindField !== undefined) {
      kinds[index] = lastKindIndex
      kindCounts[lastKindIndex] = (kindCounts[lastKindIndex] as number) + 1
    }
    seq = record.seq
    hash = record.hash
    if (timestampField !== undefined) lastTimestamp = timestamp as string
    index++
    start = newline + 1
  }
  return {
    checked: index,
    firstSeq,
    firstPrevHash,
    firstTimestamp,
    lastSeq: seq,
    lastHash: hash,
    lastTimestamp,
    kinds: kinds.slice(0, kindField === undefined ? 0 : index),
    kindNames,
    kindCounts,
    sessions,
    sessionMarks: sessionMarks.slice(0, sessions),
    sessionKeys: sessionKeys.slice(0, sessions * 2),
    sessionIdEnds: sessionIdEnds.slice(0, sessions),
    sessionIdBytes: ids.bytes.slice(0, ids.end),
    problem,
  }
}

/** The `hash` of line `index` of a chunk that `checkChunk` already passed up to that line. */
export function hashOfLine(buf: Buffer, end: number, index: number): string {
  let start = 0
  for (let i = 0; i < index; i++) start = buf.indexOf(NEWLINE, start) + 1
  const newline = buf.indexOf(NEWLINE, start)
  const record = decodeLine(buf, start, Math.min(newline === -1 ? end : newline, end), false)
  return typeof record === 'string' ? '' : record.hash
}

/** Imports `specifier` (a module URL or absolute path) and returns its `checkRecord` export. */
export async function loadRecordCheck(specifier: string): Promise<RecordCheck> {
  const loaded = (await import(specifier)) as { checkRecord?: unknown }
  if (typeof loaded.checkRecord !== 'function') {
    throw new TypeError(`${specifier} does not export a checkRecord function`)
  }
  return loaded.checkRecord as RecordCheck
}
