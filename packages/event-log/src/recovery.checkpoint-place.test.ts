import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'
import { EventLog } from './event-log.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'

// Recovery trusts sealed lines up to checkpoint.json without re-hashing them, so the checkpointed
// record must be exactly where the checkpoint says: its seq, its hash, its segment and the byte
// offset where its line ends. A checkpoint that is right about seq and hash but names another
// place does not describe this log, and the open stops.
const dirs = tempDirs()
afterEach(() => dirs.cleanup())

interface Stored {
  seq: number
  hash: string
  file: number
  offset: number
}

async function sealedLog(): Promise<{ dir: string; checkpoint: Stored; path: string }> {
  const dir = await dirs.make()
  const { log } = await EventLog.open({ dir, maxFileBytes: 1200 })
  for (let i = 1; i <= 12; i++) await log.append(sampleEvent(i))
  await log.close()
  const path = join(dir, 'events', 'checkpoint.json')
  const checkpoint = JSON.parse(await readFile(path, 'utf8')) as Stored
  expect(checkpoint.file).toBeGreaterThan(1)
  expect((await segmentFiles(dir)).length).toBeGreaterThan(checkpoint.file)
  return { dir, checkpoint, path }
}

async function openError(dir: string): Promise<unknown> {
  return EventLog.open({ dir, maxFileBytes: 1200 }).then(
    async ({ log }) => {
      await log.close()
      return undefined
    },
    (error: unknown) => error,
  )
}

describe('recovery with checkpoint.json naming the right record at the wrong place', () => {
  it('opens when seq, hash, segment and offset all match (the control)', async () => {
    const { dir } = await sealedLog()
    expect(await openError(dir)).toBeUndefined()
  })

  it.each([
    ['a byte offset one past the end of its line', (c: Stored) => ({ ...c, offset: c.offset + 1 })],
    ['a byte offset one short of the end of its line', (c: Stored) => ({ ...c, offset: c.offset - 1 })],
    ['an earlier segment', (c: Stored) => ({ ...c, file: c.file - 1 })],
  ])('refuses a checkpoint that puts the record at %s, naming the record’s line', async (_name, move) => {
    const { dir, checkpoint, path } = await sealedLog()
    await writeFile(path, JSON.stringify(move(checkpoint)))
    const files = await segmentFiles(dir)
    const lines = await linesOf(dir, files[checkpoint.file - 1])
    expect(await openError(dir)).toMatchObject({
      name: 'LogCorruptError',
      file: files[checkpoint.file - 1],
      line: lines.length,
      reason: 'record does not match checkpoint.json',
    })
  })

  it('names the seq it expected when a trusted line is out of sequence', async () => {
    const { dir } = await sealedLog()
    const [file] = await segmentFiles(dir)
    const lines = await linesOf(dir, file)
    const record: Record<string, unknown> = { ...(JSON.parse(lines[1]!) as Record<string, unknown>), seq: 7 }
    const { hash: _, ...rest } = record
    lines[1] = JSON.stringify({
      ...rest,
      hash: createHash('sha256').update(canonicalJson(rest)).digest('hex'),
    })
    await writeFile(join(dir, 'events', file!), `${lines.join('\n')}\n`)
    expect(await openError(dir)).toMatchObject({ file, line: 2, reason: 'seq is 7, expected 2' })
  })
})
