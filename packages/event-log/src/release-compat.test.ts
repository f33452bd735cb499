import { cp, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeLine } from './chain.js'
import { EventLog } from './event-log.js'
import { readLog } from './read-log.js'
import { linesOf, sampleEvent, sampleRules, tempDirs } from './testing/log-fixtures.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

// Written by @care/session-manager 0.1.0's log (before the package existed): 4 segments, a checkpoint,
// session start/touch/end records, and one record whose metadata holds a raw U+2028 and U+2029.
const RELEASE_0_1_0 = new URL('./fixtures/release-0.1.0', import.meta.url)

async function copyOfRelease(): Promise<string> {
  const dir = await dirs.make()
  await cp(RELEASE_0_1_0, dir, { recursive: true })
  return dir
}

/** Code points Python's str.splitlines() breaks lines at: what a line-oriented tool may split a log on. */
const UNICODE_LINE_BREAKS = new Set([0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029])

function unicodeLineBreaks(text: string): number {
  let count = 0
  for (const char of text) if (UNICODE_LINE_BREAKS.has(char.codePointAt(0) as number)) count++
  return count
}

describe('a log written by the 0.1.0 release', () => {
  it('verifies with the session rules and opens, recovering every record, then takes appends', async () => {
    const dir = await copyOfRelease()
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({
      ok: true,
      records: 22,
      files: 4,
      keys: 12,
    })
    const { log, report } = await EventLog.open({ dir })
    expect(report).toMatchObject({ records: 22, cuts: [] })
    await log.append(sampleEvent(300, 'session.start', 300))
    await log.close()
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({ ok: true, records: 23 })
  })

  it('still verifies its raw U+2028/U+2029 line when its keys were reordered (legacy canonical form)', async () => {
    const dir = await copyOfRelease()
    const line = (await linesOf(dir)).find((l) => l.includes('\u2028'))
    expect(line).toBeDefined()
    const parsed = JSON.parse(line as string) as Record<string, unknown>
    const reordered = Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse())))
    expect(decodeLine(reordered, 0, reordered.length)).toMatchObject({ seq: parsed.seq })
    const edited = Buffer.from(reordered.toString().replace('para', 'parb'))
    expect(decodeLine(edited, 0, edited.length)).toBe('hash does not match the line content')
  })
})

describe('line separators in records', () => {
  it('are written escaped, so a Unicode line splitter sees one line per record, and read back unchanged', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const note = 'a\u2028b\u2029c\x85d'
    await log.append({ ...sampleEvent(1), metadata: { note } })
    await log.append(sampleEvent(2))
    await log.close()
    const text = await readFile(join(dir, 'events', 'events-000001.jsonl'), 'utf8')
    expect(text).toContain('a\\u2028b\\u2029c\\u0085d')
    expect(unicodeLineBreaks(text)).toBe(2)
    const records = []
    for await (const { record } of readLog(dir)) records.push(record)
    expect(records[0]?.metadata).toEqual({ note })
    expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({ ok: true, records: 2 })
  })
})
