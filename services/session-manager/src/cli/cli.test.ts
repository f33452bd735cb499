import { execFile } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { EventLog, verifyLog } from '@care/event-log'
import { sampleEvent } from '@care/event-log/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { captureIo, scenario, tempDirs, writeLog } from '../audit/test-support/audit-fixtures.js'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, main } from './cli.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())
const S1 = '01JS0000000000000000000001'
const S2 = '01JS0000000000000000000002'
const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

async function logDir(): Promise<string> {
  const dir = await dirs.make()
  await writeLog(dir, scenario())
  return dir
}

async function run(argv: string[], env: Record<string, string> = {}) {
  const out = captureIo(env)
  const code = await main(argv, out.io)
  return { code, stdout: out.stdout, stderr: out.stderr }
}

const jsonl = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('care-sessions replay', () => {
  it('prints the session timeline in chronological order, one readable line per event', async () => {
    const dir = await logDir()
    const result = await run(['replay', S1, '--data-dir', dir])
    expect(result.code).toBe(EXIT_OK)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines.map((l) => /session\.\w+/.exec(l)?.[0])).toEqual([
      'session.start',
      'session.touch',
      'session.touch',
      'session.end',
    ])
    expect(lines[0]).toContain('2026-03-01T12:00:00.000Z')
    expect(lines[3]).toMatch(/\+40\.000s .*reason=explicit/)
  })

  it('prints stored events as JSONL with --json', async () => {
    const dir = await logDir()
    const result = await run(['replay', S2, '--data-dir', dir, '--json'])
    expect(jsonl(result.stdout).map((e) => e.seq)).toEqual([2, 5, 10])
  })

  it('reads the data directory from CARE_DATA_DIR', async () => {
    const dir = await logDir()
    expect((await run(['replay', S2, '--json'], { CARE_DATA_DIR: dir })).code).toBe(EXIT_OK)
  })

  it('exits 1 for an unknown session and 2 for something that is not a session id', async () => {
    const dir = await logDir()
    const unknown = await run(['replay', '01JS0000000000000000000099', '--data-dir', dir])
    expect(unknown).toMatchObject({ code: EXIT_FAILED, stdout: '' })
    expect(unknown.stderr).toContain('session 01JS0000000000000000000099 is not in the log')
    const bad = await run(['replay', 'nope', '--data-dir', dir])
    expect(bad.code).toBe(EXIT_USAGE)
    expect(bad.stderr).toContain("'nope' is not a session_id")
  })
})

describe('care-sessions export', () => {
  it('writes the grouped, filtered export and its manifest beside it', async () => {
    const dir = await logDir()
    const out = join(dir, 'user-a.jsonl')
    const result = await run(['export', '--data-dir', dir, '--user-id', 'user-a', '--out', out])
    expect(result).toMatchObject({ code: EXIT_OK, stdout: '' })
    expect(result.stderr).toBe(
      `exported 6 events of 2 sessions (log head seq 12) to ${out}; manifest ${out}.manifest.json\n`,
    )
    expect(jsonl(await readFile(out, 'utf8')).map((e) => e.seq)).toEqual([1, 3, 7, 9, 4, 12])
    const manifest = JSON.parse(await readFile(`${out}.manifest.json`, 'utf8'))
    expect(manifest).toMatchObject({
      filters: { user_id: 'user-a' },
      counts: { sessions: 2, events: 6 },
      source_head: { seq: 12 },
    })
  })

  it('exits 2 naming --out and its missing directory, and leaves no partial file', async () => {
    const dir = await logDir()
    const out = join(dir, 'missing-dir', 'x.jsonl')
    const result = await run(['export', '--data-dir', dir, '--out', out])
    expect(result.code).toBe(EXIT_USAGE)
    expect(result.stderr).toBe(
      `care-sessions: --out ${out}: directory ${join(dir, 'missing-dir')} does not exist (create it first)\n` +
        "Try 'care-sessions export --help'.\n",
    )
    expect(result.stderr).not.toContain('.partial')
  })

  it('streams to stdout without --out', async () => {
    const dir = await logDir()
    const result = await run(['export', '--data-dir', dir, '--reason', 'max_duration'])
    expect(jsonl(result.stdout).map((e) => e.seq)).toEqual([4, 12])
  })

  it('pseudonymises with the key file named in CARE_PSEUDONYM_KEY_FILE', async () => {
    const dir = await logDir()
    const key = join(dir, 'export.key')
    await writeFile(key, 'a-test-key-of-32-bytes-0123456789\n')
    const result = await run(['export', '--data-dir', dir], { CARE_PSEUDONYM_KEY_FILE: key })
    expect(result.code).toBe(EXIT_OK)
    expect(result.stdout).not.toMatch(/user-a|user-b|caregiver-7/)
    expect(jsonl(result.stdout)[0]!.user_id).toMatch(/^pseud:[0-9a-f]{64}$/)
  })

  it('exits 2 naming the flag for a bad filter, and for a too-short key', async () => {
    const dir = await logDir()
    const bad = await run(['export', '--data-dir', dir, '--from', 'yesterday', '--reason', 'crash'])
    expect(bad.code).toBe(EXIT_USAGE)
    expect(bad.stderr).toContain('--from: from must be an ISO 8601 date')
    expect(bad.stderr).toContain('--reason: reason must be one of explicit, idle_timeout, max_duration')
    const key = join(dir, 'short.key')
    await writeFile(key, 'short')
    const short = await run(['export', '--data-dir', dir, '--pseudonymize-key-file', key])
    expect(short.code).toBe(EXIT_USAGE)
    expect(short.stderr).toContain('at least 16 bytes')
  })
})

describe('care-sessions timeline', () => {
  it('merges worker records of the session into the lifecycle timeline', async () => {
    const dir = await logDir()
    const workerLog = join(dir, 'worker.jsonl')
    const record = (event: string, timestamp: string, session = S1) =>
      JSON.stringify({ session_id: session, event, timestamp, source: 'sample_worker' })
    await writeFile(
      workerLog,
      `${[
        record('infer.received', '2026-03-01T12:00:12.000Z'),
        record('infer.received', '2026-03-01T12:00:12.000Z', S2),
        record('infer.output', '2026-03-01T12:00:40.000Z'),
      ].join('\n')}\n`,
    )
    const result = await run(['timeline', S1, '--data-dir', dir, '--with', workerLog, '--json'])
    expect(result.code).toBe(EXIT_OK)
    expect(jsonl(result.stdout).map((r) => r.event)).toEqual([
      'session.start',
      'session.touch',
      'infer.received',
      'session.touch',
      'infer.output',
      'session.end',
    ])
    const text = await run(['timeline', S1, '--data-dir', dir, '--with', workerLog])
    expect(text.stdout).toMatch(/sample_worker\s+infer\.received .*\(worker\.jsonl:1\)/)
  })

  it('skips worker lines that do not mention the session, and stops at one that does but is not JSON', async () => {
    const dir = await logDir()
    const workerLog = join(dir, 'worker.jsonl')
    const good = JSON.stringify({
      session_id: S1,
      event: 'infer.received',
      timestamp: '2026-03-01T12:00:12.000Z',
    })
    await writeFile(workerLog, `not json at all\n${good}\n{"torn": "li\n`)
    const skipped = await run(['timeline', S1, '--data-dir', dir, '--with', workerLog, '--json'])
    expect(skipped.code).toBe(EXIT_OK)
    expect(jsonl(skipped.stdout).map((r) => r.event)).toContain('infer.received')
    await writeFile(workerLog, `${good}\n{"session_id": "${S1}", "event": "infer.outp\n`)
    const stopped = await run(['timeline', S1, '--data-dir', dir, '--with', workerLog])
    expect(stopped.code).toBe(EXIT_FAILED)
    expect(stopped.stderr).toContain(`${workerLog}:2`)
    expect(stopped.stderr).toContain('not valid JSON')
  })

  it('exits 2 without --with or with a worker log that does not exist', async () => {
    const dir = await logDir()
    expect((await run(['timeline', S1, '--data-dir', dir])).stderr).toContain('needs at least one --with')
    const missing = await run(['timeline', S1, '--data-dir', dir, '--with', join(dir, 'nope.jsonl')])
    expect(missing.code).toBe(EXIT_USAGE)
    expect(missing.stderr).toContain('nope.jsonl does not exist')
  })
})

describe('care-sessions usage', () => {
  it('prints help for every command and every db command and exits 0', async () => {
    for (const command of ['verify', 'replay', 'export', 'timeline', 'db']) {
      const result = await run([command, '--help'])
      expect(result.code).toBe(EXIT_OK)
      expect(result.stdout).toContain(`Usage: care-sessions ${command}`)
    }
    for (const command of ['migrate', 'verify', 'checkpoint', 'import', 'export']) {
      const result = await run(['db', command, '--help'])
      expect(result.code).toBe(EXIT_OK)
      expect(result.stdout).toContain(`Usage: care-sessions db ${command}`)
    }
    expect((await run(['--help'])).stdout).toContain('care-sessions verify <data-dir>')
  })

  it('answers a bad flag with one line and a --help hint, exit 2, for every command', async () => {
    for (const argv of [
      ['replay', S1, '--colour'],
      ['export', '--bogus'],
      ['db', 'migrate', '--bogus=1'],
      ['verify', '--json=yes'],
    ]) {
      const result = await run(argv)
      expect(result.code).toBe(EXIT_USAGE)
      const lines = result.stderr.trimEnd().split('\n')
      expect(lines).toHaveLength(2)
      expect(lines[0]).toMatch(/^care-sessions: /)
      expect(lines[1]).toMatch(/^Try 'care-sessions .*--help'\.$/)
    }
  })

  it('understands --database-url=URL, checks it, and falls back to DATABASE_URL', async () => {
    const bad = await run(['db', 'verify', '--database-url=not-a-url'])
    expect(bad.code).toBe(EXIT_USAGE)
    expect(bad.stderr).toContain('--database-url not-a-url is not a URL')
    const none = await run(['db', 'migrate'])
    expect(none.code).toBe(EXIT_USAGE)
    expect(none.stderr).toContain('needs --database-url <url> or DATABASE_URL')
    // A well-formed URL nobody answers: parsed, tried, and reported as a failure (exit 1), not a usage error.
    const unreachable = await run(['verify', '--database-url=postgres://care@127.0.0.1:1/care'])
    expect(unreachable.code).toBe(EXIT_FAILED)
    expect(unreachable.stderr).toMatch(/^care-sessions db verify: /)
    const fromEnv = await run(['db', 'checkpoint'], { DATABASE_URL: 'postgres://care@127.0.0.1:1/care' })
    expect(fromEnv.code).toBe(EXIT_FAILED)
  })

  it('export --database-url checks the URL, takes --schema and --checkpoints only with it, and reports an unreachable database as a failure', async () => {
    const bad = await run(['export', '--database-url', 'not-a-url'])
    expect(bad.code).toBe(EXIT_USAGE)
    expect(bad.stderr).toContain('--database-url not-a-url is not a URL')
    const stray = await run(['export', '--checkpoints', '/tmp'])
    expect(stray.code).toBe(EXIT_USAGE)
    expect(stray.stderr).toContain('--schema and --checkpoints go with --database-url')
    const out = join(await dirs.make(), 'export.jsonl')
    const unreachable = await run(['export', '--database-url=postgres://care@127.0.0.1:1/care', '--out', out])
    expect(unreachable.code).toBe(EXIT_FAILED)
    // Nothing half-written is left under the output's name.
    await expect(readFile(out)).rejects.toThrow(/ENOENT/)
    await expect(readFile(`${out}.proofs.jsonl`)).rejects.toThrow(/ENOENT/)
  })

  it('names the last line of the log when it ends before the expected head', async () => {
    const dir = await logDir()
    const result = await run(['verify', dir, '--expected-head', `13:${'a'.repeat(64)}`])
    expect(result.code).toBe(EXIT_FAILED)
    expect(result.stderr).toContain(
      `${join(dir, 'events', 'events-000001.jsonl')}:12: log ends at seq 12, but the expected head is seq 13`,
    )
  })

  it('exits 2 for an unknown command, an unknown flag, no command and a missing data directory', async () => {
    expect((await run(['frobnicate'])).stderr).toContain("unknown command 'frobnicate'")
    const flag = await run(['replay', S1, '--colour'])
    expect(flag.code).toBe(EXIT_USAGE)
    expect(flag.stderr).toContain("Unknown option '--colour'")
    expect((await run([])).code).toBe(EXIT_USAGE)
    const missing = await run(['verify', '/nonexistent/care-data'])
    expect(missing.code).toBe(EXIT_USAGE)
    expect(missing.stderr).toContain('data directory /nonexistent/care-data does not exist')
    const notData = await dirs.make()
    expect((await run(['verify', notData])).stderr).toContain('no events/ directory inside')
  })
})

describe('the built care-sessions bin', () => {
  const exec = promisify(execFile)

  it('verifies a log, prints only the result off a terminal, and exits 1 on a tampered log', async () => {
    const dir = await logDir()
    const ok = await exec(process.execPath, [BIN, 'verify', dir])
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toMatch(/^OK: 12 events in 1 file\(s\), 4 sessions/)
    const file = join(dir, 'events', 'events-000001.jsonl')
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('"reason":"idle_timeout"', '"reason":"explicit"'),
    )
    const failed = await exec(process.execPath, [BIN, 'verify', dir]).catch(
      (err: { code: number; stderr: string }) => err,
    )
    expect(failed).toMatchObject({ code: 1 })
    expect((failed as { stderr: string }).stderr).toContain(
      'events-000001.jsonl:10: hash does not match the line content',
    )
  })
})

describe('care-sessions archive', () => {
  /** 60 events, one a second from 2026-03-01T12:00:01Z, in many small sealed segments. */
  async function segmentedLog() {
    const dir = await dirs.make()
    const { log } = await EventLog.open({
      dir,
      maxFileBytes: 2500,
      recordTime: (r) => Date.parse(String(r.timestamp)),
    })
    for (let i = 1; i <= 60; i++) await log.append(sampleEvent(i))
    return { dir, log }
  }

  it('moves the segments older than --before to --to, and the log still verifies across the boundary', async () => {
    const { dir, log } = await segmentedLog()
    await log.close()
    const to = join(await dirs.make(), 'archive')
    const before = (await readdir(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl'))
    const result = await run(['archive', dir, '--before', '2026-03-01T12:00:30Z', '--to', to])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(EXIT_OK)
    expect(result.stdout).toMatch(/^archived [1-9]\d* segment\(s\) older than 2026-03-01T12:00:30\.000Z/)
    const moved = (await readdir(to)).filter((n) => n.endsWith('.jsonl'))
    const kept = (await readdir(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl'))
    expect(moved.length).toBeGreaterThan(0)
    expect([...moved, ...kept].sort()).toEqual(before)
    expect(await readdir(join(dir, 'events'))).toContain('archive-manifest.json')
    expect(await verifyLog(dir)).toMatchObject({ ok: true })
    expect(await verifyLog(dir, { archiveDir: to })).toMatchObject({ ok: true, records: 60 })
    // A rerun with the same cut-off has nothing left to move.
    const again = await run(['archive', '--data-dir', dir, '--before', '2026-03-01', '--to', to, '--json'])
    expect(again.code).toBe(EXIT_OK)
    expect(JSON.parse(again.stdout)).toMatchObject({ archived: [], finished: [] })
  })

  it('refuses while the service holds the data directory, and moves nothing', async () => {
    const { dir, log } = await segmentedLog()
    try {
      const to = join(await dirs.make(), 'archive')
      const result = await run(['archive', dir, '--before', '2026-03-02', '--to', to])
      expect(result.code).toBe(EXIT_FAILED)
      expect(result.stderr).toMatch(/locked.*stop the service first/)
      expect(await readdir(to).catch(() => [])).toEqual([])
    } finally {
      await log.close()
    }
  })

  it.each([
    [['--to', 'TO'], /needs --before/],
    [['--before', '2026-03-01'], /needs --to/],
    [['--before', 'yesterday', '--to', 'TO'], /not an ISO date/],
    [['--before', '2026-02-30', '--to', 'TO'], /not an ISO date/],
    [['--before', '2026-03-01T25:00', '--to', 'TO'], /not an ISO date/],
    [['--before', '2999-03-01', '--to', 'TO'], /2999-03-01T00:00:00\.000Z is in the future/],
  ])('answers a usage error for %j', async (args, message) => {
    const { dir, log } = await segmentedLog()
    await log.close()
    const to = join(await dirs.make(), 'archive')
    const result = await run(['archive', dir, ...args.map((a) => (a === 'TO' ? to : a))])
    expect(result.code).toBe(EXIT_USAGE)
    expect(result.stderr).toMatch(message)
    expect(await readdir(to).catch(() => [])).toEqual([])
  })

  it('refuses a --to other than the directory the log already archives to, with the message, not a stack', async () => {
    const { dir, log } = await segmentedLog()
    await log.close()
    const first = join(await dirs.make(), 'archive')
    expect((await run(['archive', dir, '--before', '2026-03-01T12:00:20Z', '--to', first])).code).toBe(
      EXIT_OK,
    )
    const other = join(await dirs.make(), 'elsewhere')
    const result = await run(['archive', dir, '--before', '2026-03-01T12:00:40Z', '--to', other])
    expect(result.code).toBe(EXIT_USAGE)
    expect(result.stderr).toMatch(/archives to .*archive, not .*elsewhere/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
    expect(await readdir(other).catch(() => [])).toEqual([])
  })

  it('refuses an archive directory inside the data directory', async () => {
    const { dir, log } = await segmentedLog()
    await log.close()
    const result = await run(['archive', dir, '--before', '2026-03-02', '--to', join(dir, 'old')])
    expect(result.code).toBe(EXIT_USAGE)
    expect(result.stderr).toMatch(/outside the data directory/)
  })
})
