import { mkdtempSync, rmSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'
import {
  type SpawnedSessionManager,
  spawnSessionManager,
  waitReady,
} from '../test-support/spawn-session-manager.js'

// A complete line that fails its checks is damage, never a torn tail: an acknowledged event may be on it.
// Real processes and real files, as the defects were found (issue #11, defects 1 and 3).

const SEGMENT = 'events-000001.jsonl'
const dirs: string[] = []
const processes: SpawnedSessionManager[] = []
const servers: RunningSessionManager[] = []

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'care-damage-'))
  dirs.push(dir)
  return dir
}

afterEach(async () => {
  await Promise.all(processes.splice(0).map((sm) => sm.kill('SIGKILL')))
  await Promise.all(servers.splice(0).map((s) => s.stop()))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

async function boot(env: Record<string, string>): Promise<SpawnedSessionManager> {
  const sm = await spawnSessionManager(env)
  processes.push(sm)
  await waitReady(sm.url)
  return sm
}

/** Replaces `from` by `to` (same length, so every position stays valid) in the last line of the segment. */
async function editLastLine(dir: string, from: string, to: string): Promise<void> {
  const file = join(dir, 'events', SEGMENT)
  const text = await readFile(file, 'utf8')
  const start = text.lastIndexOf('\n', text.length - 2) + 1
  expect(text.slice(start)).toContain(from)
  await writeFile(file, text.slice(0, start) + text.slice(start).replace(from, to))
}

describe('a damaged complete last line', { timeout: 60_000 }, () => {
  it('stops a restarted service with file:line, and --repair (CARE_LOG_REPAIR=1) starts it, cutting into .broken', async () => {
    const dir = dataDir()
    const first = await boot({ CARE_DATA_DIR: dir })
    const started = await postJson(`${first.url}/sessions.start`, requestBody({ performer_id: 'cg-alice' }))
    expect(started?.status).toBe(201)
    await first.kill('SIGKILL')
    await editLastLine(dir, '"performer_id":"cg-alice"', '"performer_id":"cg-alicf"')

    // It listens at once (readiness says it is recovering), then recovery refuses the log.
    const second = await spawnSessionManager({ CARE_DATA_DIR: dir })
    processes.push(second)
    expect(await second.exited).toBe(1)
    expect(second.lines.join('\n')).toContain(`${join(dir, 'events', SEGMENT)} line 1: hash does not match`)

    const repaired = await boot({ CARE_DATA_DIR: dir, CARE_LOG_REPAIR: '1' })
    const session = await fetch(`${repaired.url}/sessions/${started!.body.session_id}`)
    expect(session.status).toBe(404)
    expect(await readFile(join(dir, 'events', `${SEGMENT}.broken`), 'utf8')).toContain('cg-alicf')
  })
})

describe('a retry whose earlier answer sits on a line damaged after start', { timeout: 60_000 }, () => {
  it('answers 503 log_integrity with Retry-After, logs file:line as an error, and is not a 500', async () => {
    const dir = dataDir()
    const logLines: Record<string, unknown>[] = []
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line))
        done()
      },
    })
    const running = await startSessionManager(loadConfig({ PORT: '0', CARE_DATA_DIR: dir }), {
      logger: pino({ level: 'info' }, sink),
    })
    servers.push(running)
    await running.ready
    const url = `http://127.0.0.1:${running.port}`
    const body = requestBody({ performer_id: 'cg-alice' })
    expect((await postJson(`${url}/sessions.start`, body))?.status).toBe(201)
    await editLastLine(dir, '"performer_id":"cg-alice"', '"performer_id":"cg-alicf"')

    const res = await fetch(`${url}/sessions.start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await res.json()).toMatchObject({ error: 'log_integrity' })
    const logged = logLines.find((l) => l.level === 50 && l.code === 'log_integrity')
    expect(logged).toMatchObject({ file: SEGMENT, line: 1, reason: 'hash does not match the line content' })
  })
})
