import { cp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EventLog, type LogHead } from '@care/event-log'
import { seededRandom } from '@care/test-kit'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  captureIo,
  lifecycleEvent,
  scenario,
  tempDirs,
  writeLog,
} from '../audit/test-support/audit-fixtures.js'
import { verifyDataDir } from '../audit/verify.js'
import { EXIT_FAILED, EXIT_OK, main } from './cli.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

/** A real log (three sessions' worth per file at most) spread over several segment files. */
async function realLog(): Promise<{ dir: string; files: string[]; head: LogHead }> {
  const dir = await dirs.make()
  const events = [...scenario(), ...scenario().map((e, i) => ({ ...e, ...moreOf(e, i) }))]
  await writeLog(dir, events, 4000)
  const { log } = await EventLog.open({ dir })
  const head = log.head
  await log.close()
  const files = (await readdir(join(dir, 'events'))).filter((f) => f.endsWith('.jsonl')).sort()
  return { dir, files, head }
}

/** The same scenario shifted by 100 s and onto sessions 11-14, so the log stays valid. */
function moreOf(event: Record<string, unknown>, i: number): Record<string, unknown> {
  const session = Number(String(event.session_id).slice(-2)) + 10
  const shift = (t: unknown) => new Date(Date.parse(String(t)) + 100_000).toISOString()
  return {
    session_id: `01JS${String(session).padStart(22, '0')}`,
    record_id: `01JX${String(i).padStart(22, '0')}`,
    timestamp: shift(event.timestamp),
    ...(event.started_at ? { started_at: shift(event.started_at), ended_at: shift(event.ended_at) } : {}),
  }
}

async function linesOf(dir: string, file: string): Promise<string[]> {
  return (await readFile(join(dir, 'events', file), 'utf8')).split('\n').slice(0, -1)
}

async function writeLines(dir: string, file: string, lines: string[]): Promise<void> {
  await writeFile(join(dir, 'events', file), lines.map((l) => `${l}\n`).join(''))
}

async function cliVerify(
  dir: string,
  ...flags: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = captureIo()
  const code = await main(['verify', dir, ...flags], out.io)
  return { code, stdout: out.stdout, stderr: out.stderr }
}

describe('care-sessions verify', () => {
  let file2 = ''
  beforeAll(() => {
    file2 = 'events-000002.jsonl'
  })

  it('passes an untouched log and prints a summary', async () => {
    const { dir, files } = await realLog()
    expect(files.length).toBeGreaterThanOrEqual(3)
    const result = await cliVerify(dir)
    expect(result).toMatchObject({ code: EXIT_OK, stderr: '' })
    expect(result.stdout).toMatch(/^OK: 24 events in \d+ file\(s\), 8 sessions/)
  })

  it('detects an edited line, naming its file and line', async () => {
    const { dir } = await realLog()
    const lines = await linesOf(dir, file2)
    lines[1] = lines[1]!.replace('"user_id":"user-', '"user_id":"USER-')
    await writeLines(dir, file2, lines)
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(`${file2}:2: hash does not match the line content`)
  })

  it('detects a deleted line at the line that follows it', async () => {
    const { dir } = await realLog()
    const lines = await linesOf(dir, file2)
    lines.splice(1, 1)
    await writeLines(dir, file2, lines)
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toMatch(new RegExp(`${file2}:2: seq is \\d+, expected \\d+`))
  })

  it('detects an inserted line', async () => {
    const { dir } = await realLog()
    const lines = await linesOf(dir, file2)
    lines.splice(2, 0, lines[0]!)
    await writeLines(dir, file2, lines)
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(`${file2}:3: seq is`)
  })

  it('detects two reordered lines', async () => {
    const { dir } = await realLog()
    const lines = await linesOf(dir, file2)
    ;[lines[1], lines[2]] = [lines[2]!, lines[1]!]
    await writeLines(dir, file2, lines)
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(`${file2}:2: seq is`)
  })

  it('detects a cut-off last line', async () => {
    const { dir, files } = await realLog()
    const last = files.at(-1)!
    const lines = await linesOf(dir, last)
    const size = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)
    await truncate(join(dir, 'events', last), size - 20)
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(`${last}:${lines.length}: last line has no trailing newline`)
  })

  it('detects whole lines cut off the tail when given the head from an export manifest', async () => {
    const { dir, files, head } = await realLog()
    const manifest = join(dir, 'export.manifest.json')
    await writeFile(manifest, JSON.stringify({ source_head: head }))
    const last = files.at(-1)!
    const lines = await linesOf(dir, last)
    await writeLines(dir, last, lines.slice(0, -1))
    // The chain alone cannot see a clean cut at a line boundary...
    expect((await cliVerify(dir)).code).toBe(EXIT_OK)
    // ...an anchor can.
    const anchored = await cliVerify(dir, '--manifest', manifest)
    expect(anchored.code).toBe(EXIT_FAILED)
    expect(anchored.stderr).toContain(`but the expected head is seq ${head.seq}`)
    expect((await cliVerify(dir, '--expected-head', `${head.seq}:${head.hash}`)).code).toBe(EXIT_FAILED)
  })

  it('detects a missing middle segment file', async () => {
    const { dir } = await realLog()
    await rm(join(dir, 'events', file2))
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain('events-000003.jsonl:1: segment events-000002.jsonl is missing')
  })

  it('detects an event that chains correctly but breaks the lifecycle schema', async () => {
    const dir = await dirs.make()
    const bad = lifecycleEvent('session.touch', { session: 1, user: 'user-a', atSeconds: 1 })
    delete bad.input_digest
    await writeLog(dir, [lifecycleEvent('session.start', { session: 1, user: 'user-a', atSeconds: 0 }), bad])
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toMatch(/events-000001\.jsonl:2: schema: .*input_digest/)
  })

  it('detects a second session.start for one session', async () => {
    const dir = await dirs.make()
    await writeLog(dir, [
      lifecycleEvent('session.start', { session: 1, atSeconds: 0 }),
      lifecycleEvent('session.start', { session: 1, atSeconds: 1 }),
    ])
    const result = await cliVerify(dir)
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(
      'events-000001.jsonl:2: second session.start for session 01JS0000000000000000000001',
    )
  })
})

type Files = Map<string, Buffer>

const MUTATIONS: Record<string, (files: Files, names: string[], rand: () => number) => void> = {
  'flip a byte': (files, names, rand) => {
    const name = pick(names, rand)
    const buf = Buffer.from(files.get(name)!)
    const at = Math.floor(rand() * buf.length)
    buf[at] = buf[at]! ^ (1 + Math.floor(rand() * 255))
    files.set(name, buf)
  },
  'change a digit': (files, names, rand) => {
    const name = pick(names, rand)
    const buf = Buffer.from(files.get(name)!)
    const digits = [...buf.keys()].filter((i) => buf[i]! >= 0x30 && buf[i]! <= 0x39)
    const at = pick(digits, rand)
    buf[at] = 0x30 + ((buf[at]! - 0x30 + 1 + Math.floor(rand() * 9)) % 10)
    files.set(name, buf)
  },
  'delete bytes': (files, names, rand) => {
    const name = pick(names, rand)
    const buf = files.get(name)!
    const at = Math.floor(rand() * buf.length)
    const n = 1 + Math.floor(rand() * 20)
    files.set(name, Buffer.concat([buf.subarray(0, at), buf.subarray(at + n)]))
  },
  'insert bytes': (files, names, rand) => {
    const name = pick(names, rand)
    const buf = files.get(name)!
    const at = Math.floor(rand() * (buf.length + 1))
    const extra = Buffer.from(
      Array.from({ length: 1 + Math.floor(rand() * 10) }, () => Math.floor(rand() * 256)),
    )
    files.set(name, Buffer.concat([buf.subarray(0, at), extra, buf.subarray(at)]))
  },
  'delete a line': (files, names, rand) =>
    editLines(files, pick(names, rand), (lines) => lines.splice(Math.floor(rand() * lines.length), 1)),
  'duplicate a line': (files, names, rand) =>
    editLines(files, pick(names, rand), (lines) =>
      lines.splice(Math.floor(rand() * (lines.length + 1)), 0, pick(lines, rand)),
    ),
  'swap two lines': (files, names, rand) =>
    editLines(files, pick(names, rand), (lines) => {
      const i = Math.floor(rand() * lines.length)
      const j = Math.floor(rand() * lines.length)
      ;[lines[i], lines[j]] = [lines[j]!, lines[i]!]
    }),
  'move a line to another file': (files, names, rand) => {
    const from = pick(names, rand)
    const to = pick(names, rand)
    let moved = ''
    editLines(files, from, (lines) => {
      moved = lines.splice(Math.floor(rand() * lines.length), 1)[0]!
    })
    editLines(files, to, (lines) => lines.splice(Math.floor(rand() * (lines.length + 1)), 0, moved))
  },
  'truncate a file': (files, names, rand) => {
    const name = pick(names, rand)
    const buf = files.get(name)!
    files.set(name, buf.subarray(0, Math.floor(rand() * buf.length)))
  },
  'delete a file': (files, names, rand) => {
    files.delete(pick(names, rand))
  },
}

function pick<T>(items: readonly T[], rand: () => number): T {
  return items[Math.floor(rand() * items.length)]!
}

function editLines(files: Files, name: string, edit: (lines: string[]) => void): void {
  const lines = files.get(name)!.toString('utf8').split('\n').slice(0, -1)
  edit(lines)
  files.set(name, Buffer.from(lines.map((l) => `${l}\n`).join('')))
}

describe('100 random mutations of a real log', () => {
  it('detects every mutation that changes the bytes (verifying against the published head)', async () => {
    const { dir, files: names, head } = await realLog()
    const original: Files = new Map()
    for (const name of names) original.set(name, await readFile(join(dir, 'events', name)))
    const kinds = Object.keys(MUTATIONS)
    const rand = seededRandom(20260301)
    const seen = new Set<string>()
    let changed = 0
    for (let i = 0; i < 100; i++) {
      const kind = kinds[i % kinds.length]!
      const files: Files = new Map(original)
      MUTATIONS[kind]!(files, names, rand)
      const same = files.size === original.size && [...files].every(([n, b]) => original.get(n)!.equals(b))
      if (same) continue
      changed++
      seen.add(kind)
      const copy = await dirs.make()
      await cp(join(dir, 'events'), join(copy, 'events'), { recursive: true })
      for (const name of names) {
        const bytes = files.get(name)
        if (bytes) await writeFile(join(copy, 'events', name), bytes)
        else await rm(join(copy, 'events', name))
      }
      const report = await verifyDataDir(copy, { expectedHead: head })
      expect(report.ok, `mutation #${i} (${kind}) was not detected`).toBe(false)
      await rm(copy, { recursive: true, force: true })
    }
    expect(changed).toBeGreaterThanOrEqual(90)
    expect(seen.size).toBe(kinds.length)
  }, 60_000)
})
