import { createHash, hash as oneShotHash } from 'node:crypto'
import { canonicalJson, escapeLineSeparators, jsonCopyWithSortedKeys, NOT_PLAIN } from './canonical-json.js'

/**
 * The `prev_hash` of the first record (`seq` 1): 64 zeros.
 *
 * @example
 * if (record.seq === 1 && record.prev_hash !== GENESIS_HASH) throw new Error('not the start of a log')
 */
export const GENESIS_HASH = '0'.repeat(64)

/**
 * The fields the log adds to every record: its 1-based `seq`, the previous line's `hash` and its own
 * `hash` (SHA-256, hex, of the canonical JSON of the line without `hash`).
 *
 * @example
 * const fields: ChainFields = { seq: 1, prev_hash: GENESIS_HASH, hash: record.hash }
 */
export interface ChainFields {
  seq: number
  prev_hash: string
  hash: string
}

/**
 * One line of the log: the record's own fields (`R`, any JSON object) plus the chain fields.
 *
 * @example
 * const { record } = await log.append(event)
 * console.log(record.seq, record.hash)
 */
export type ChainedRecord<R extends object = Record<string, unknown>> = R & ChainFields

/** Field names the log owns; an event that already carries one is rejected. */
export const CHAIN_FIELDS = ['seq', 'prev_hash', 'hash'] as const
const CHAIN_FIELD_SET: ReadonlySet<string> = new Set(CHAIN_FIELDS)

/**
 * The event a stored record was made from: the record without `seq`, `prev_hash` and `hash`.
 *
 * @example
 * const [stored] = await log.read([position])
 * return withoutChainFields(stored) // what the client was answered originally
 */
export function withoutChainFields(record: Record<string, unknown>): Record<string, unknown> {
  const event: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(record)) if (!CHAIN_FIELD_SET.has(key)) event[key] = value
  return event
}

// `,"hash":"` + 64 hex + `"}`: every writer puts `hash` last, so the hashed text is the line minus this suffix plus `}`.
const HASH_SUFFIX_HEAD = Buffer.from(',"hash":"')
const HASH_SUFFIX_LENGTH = HASH_SUFFIX_HEAD.length + 64 + 2
const COMMA = 0x2c
const CLOSE_BRACE = 0x7d
const QUOTE = 0x22

/** The canonical form lines are written in (before 0.2 they kept U+2028/U+2029 raw; both verify). */
const WRITTEN_FORM = { escapeLineSeparators: true } as const

const sha256Hex: (data: string | Uint8Array) => string =
  typeof oneShotHash === 'function'
    ? (data) => oneShotHash('sha256', data, 'hex')
    : (data) => createHash('sha256').update(data).digest('hex')

/**
 * Builds the record and its line (canonical JSON, `hash` last, trailing newline) for `event` at `seq`
 * after `prevHash`: exactly what `EventLog.append` writes. For tools that write a log in bulk (e.g. a
 * benchmark fixture); a live log must only be written through `EventLog`.
 *
 * @example
 * const { record, line } = encodeRecord({ kind: 'created' }, 1, GENESIS_HASH)
 */
export function encodeRecord(
  event: object,
  seq: number,
  prevHash: string,
): { record: ChainedRecord; line: Buffer } {
  // One copy of the event with sorted keys and the chain fields in place: JSON.stringify of it is the
  // canonical text, and it is what a parse of that text would give (undefined members dropped,
  // non-finite numbers null), so it is the record handed back without parsing the line again.
  const copy = jsonCopyWithSortedKeys(event, 0, { seq, prev_hash: prevHash })
  if (copy === NOT_PLAIN) return encodeGeneral(event, seq, prevHash)
  const text = JSON.stringify(copy)
  const canonical = WRITTEN_FORM.escapeLineSeparators ? escapeLineSeparators(text) : text
  const hash = sha256Hex(canonical)
  const record = copy as ChainedRecord
  record.hash = hash
  return { record, line: lineOf(canonical, hash) }
}

/** `encodeRecord` for values that are not plain data (a `toJSON` somewhere, e.g. a Date). */
function encodeGeneral(
  event: object,
  seq: number,
  prevHash: string,
): { record: ChainedRecord; line: Buffer } {
  const canonical = canonicalJson({ ...event, seq, prev_hash: prevHash }, WRITTEN_FORM)
  const hash = sha256Hex(canonical)
  // Return what is on disk (undefined members dropped, toJSON applied), not the caller's object.
  const record = JSON.parse(canonical) as ChainedRecord
  record.hash = hash
  return { record, line: lineOf(canonical, hash) }
}

/** The written line: the canonical text with `hash` as its last member, and a newline. */
function lineOf(canonical: string, hash: string): Buffer {
  return Buffer.from(`${canonical.slice(0, -1)},"hash":"${hash}"}\n`)
}

/**
 * Parses and hash-checks one line (`buf[start, end)`, without the newline). Returns the record or the
 * reason it is bad (a string). `checkHash: false` (recovery of checkpointed segments) parses and checks
 * shape only. Fast path: hash the text prefix in place; fallback: re-canonicalise the parsed object
 * (in the written form, then the form before 0.2), so a key-reordered line still verifies but any
 * change of content does not. `seq` and `prev_hash` against the previous line are the caller's checks.
 *
 * @example
 * const record = decodeLine(buf, start, end)
 * if (typeof record === 'string') throw new Error(`line ${n}: ${record}`)
 */
export function decodeLine(
  buf: Buffer,
  start: number,
  end: number,
  checkHash = true,
): ChainedRecord | string {
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8', start, end))
  } catch {
    return 'line is not valid JSON'
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return 'line is not a JSON object'
  const record = parsed as ChainedRecord
  // No hex-format checks here (a regex per line costs as much as the hash): `hash` must equal a digest we
  // compute, and callers compare `prev_hash` with the previous line's hash.
  if (typeof record.hash !== 'string' || record.hash.length !== 64) return 'hash is missing or malformed'
  if (!Number.isSafeInteger(record.seq) || record.seq < 1) return 'seq is missing or not a positive integer'
  if (typeof record.prev_hash !== 'string') return 'prev_hash is missing'
  if (!checkHash) return record
  if (end - start > HASH_SUFFIX_LENGTH && hasWriterSuffix(buf, end)) {
    const cut = end - HASH_SUFFIX_LENGTH
    // Hash `prefix + '}'` without copying: borrow the comma's byte for the brace, then put it back.
    buf[cut] = CLOSE_BRACE
    const digest = sha256Hex(buf.subarray(start, cut + 1))
    buf[cut] = COMMA
    if (digest === record.hash) return record
  }
  const { hash, ...unhashed } = record
  const written = canonicalJson(unhashed, WRITTEN_FORM)
  if (sha256Hex(written) === hash) return record
  // A line written before 0.2 hashed U+2028/U+2029/U+0085 raw; only then does the other form differ.
  const legacy = canonicalJson(unhashed)
  if (legacy !== written && sha256Hex(legacy) === hash) return record
  return 'hash does not match the line content'
}

function hasWriterSuffix(buf: Buffer, end: number): boolean {
  if (buf[end - 1] !== CLOSE_BRACE || buf[end - 2] !== QUOTE) return false
  const at = end - HASH_SUFFIX_LENGTH
  for (let i = 0; i < HASH_SUFFIX_HEAD.length; i++) if (buf[at + i] !== HASH_SUFFIX_HEAD[i]) return false
  return true
}
