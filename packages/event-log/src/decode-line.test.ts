import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'
import { decodeLine, encodeRecord, GENESIS_HASH } from './chain.js'
import { verifyLog } from './verify.js'

const HASH = 'a'.repeat(64)

/** `text` as a line in a larger buffer (other bytes around it), as the scanners hand it over. */
function decode(text: string, checkHash = true) {
  const buf = Buffer.from(`xx${text}\nyy`)
  const before = Buffer.from(buf)
  const result = decodeLine(buf, 2, 2 + Buffer.byteLength(text), checkHash)
  // decodeLine may write into the buffer only transiently.
  expect(buf.equals(before)).toBe(true)
  return result
}

function lineOf(event: object, seq = 1, prevHash = GENESIS_HASH): string {
  return encodeRecord(event, seq, prevHash).line.toString('utf8').slice(0, -1)
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

describe('decodeLine', () => {
  it('returns the record of a line as the writer wrote it', () => {
    const line = lineOf({ kind: 'created', n: 1 }, 3, HASH)
    expect(decode(line)).toEqual({
      kind: 'created',
      n: 1,
      seq: 3,
      prev_hash: HASH,
      hash: JSON.parse(line).hash,
    })
  })

  it('accepts a line whose keys were reordered (no writer suffix) while its content is unchanged', () => {
    const record = JSON.parse(lineOf({ kind: 'created' })) as Record<string, unknown>
    const reordered = JSON.stringify({ hash: record.hash, seq: 1, prev_hash: GENESIS_HASH, kind: 'created' })
    expect(decode(reordered)).toMatchObject({ kind: 'created', seq: 1 })
    // The same suffix shape but the hash of other content: the fast path fails, the slow path too.
    const edited = lineOf({ kind: 'created' }).replace('"created"', '"deleted"')
    expect(decode(edited)).toBe('hash does not match the line content')
    expect(decode(reordered.replace('"created"', '"deleted"'))).toBe('hash does not match the line content')
  })

  it('accepts a line hashed the way releases before 0.2 did (raw U+2028), and only that legacy form', () => {
    const unhashed = { note: 'a\u2028b', seq: 1, prev_hash: GENESIS_HASH }
    const legacy = canonicalJson(unhashed)
    const line = `${legacy.slice(0, -1)},"hash":"${sha256(legacy)}"}`
    expect(decode(line)).toMatchObject({ note: 'a\u2028b' })
    const wrong = `${legacy.slice(0, -1)},"hash":"${sha256(`${legacy} `)}"}`
    expect(decode(wrong)).toBe('hash does not match the line content')
  })

  it('names what is wrong with a line that is not a chained record', () => {
    const ok = { seq: 1, prev_hash: GENESIS_HASH, hash: HASH }
    expect(decode('{"seq":1,')).toBe('line is not valid JSON')
    expect(decode('')).toBe('line is not valid JSON')
    for (const text of ['null', '[1,2]', '"text"', '42', 'true'])
      expect(decode(text), text).toBe('line is not a JSON object')
    for (const hash of [undefined, 7, 'a'.repeat(63), 'a'.repeat(65)])
      expect(decode(JSON.stringify({ ...ok, hash })), String(hash)).toBe('hash is missing or malformed')
    for (const seq of [undefined, 0, -1, 1.5, '1', 2 ** 53])
      expect(decode(JSON.stringify({ ...ok, seq })), String(seq)).toBe(
        'seq is missing or not a positive integer',
      )
    for (const prev_hash of [undefined, null, 0])
      expect(decode(JSON.stringify({ ...ok, prev_hash })), String(prev_hash)).toBe('prev_hash is missing')
  })

  it('checks shape but not the hash when asked not to (lines below a checkpoint)', () => {
    const text = JSON.stringify({ seq: 1, prev_hash: GENESIS_HASH, hash: HASH, kind: 'x' })
    expect(decode(text)).toBe('hash does not match the line content')
    expect(decode(text, false)).toEqual({ seq: 1, prev_hash: GENESIS_HASH, hash: HASH, kind: 'x' })
    expect(decode('{"seq":1}', false)).toBe('hash is missing or malformed')
  })

  it('does not mistake a short object ending in a string for the writer suffix', () => {
    const text = JSON.stringify({ seq: 1, prev_hash: GENESIS_HASH, hash: HASH })
    expect(decode(text)).toBe('hash does not match the line content')
    const unhashed = { prev_hash: GENESIS_HASH, seq: 1 }
    const line = JSON.stringify({ ...unhashed, hash: sha256(canonicalJson(unhashed)) })
    expect(decode(line)).toMatchObject({ seq: 1 })
  })
})

describe('decodeLine on the writer suffix (`,"hash":"<64 hex>"}`)', () => {
  it('accepts a line whose hash covers exactly its bytes before the suffix, as verifyLog does', async () => {
    // Not canonical (a space, keys unsorted), but the hash is over these very bytes plus `}`.
    const prefix = `{"seq":1, "prev_hash":"${GENESIS_HASH}","kind":"created"`
    const line = `${prefix},"hash":"${sha256(`${prefix}}`)}"}`
    expect(decode(line)).toMatchObject({ seq: 1, kind: 'created' })
    const dir = await mkdtemp(join(tmpdir(), 'care-suffix-'))
    try {
      await mkdir(join(dir, 'events'))
      await writeFile(join(dir, 'events', 'events-000001.jsonl'), `${line}\n`)
      expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 1 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('needs the whole suffix: a different key, a missing closing quote or brace falls back to the content hash', () => {
    const prefix = `{"seq":1, "prev_hash":"${GENESIS_HASH}","kind":"created"`
    const digest = sha256(`${prefix}}`)
    expect(decode(`${prefix},"hask":"${digest}","hash":"${digest}"}`)).toBe(
      'hash does not match the line content',
    )
    expect(decode(`${prefix},"hash":"${digest}" }`)).toBe('hash does not match the line content')
    expect(decode(`${prefix},"hash" :"${digest}"}`)).toBe('hash does not match the line content')
  })
})
