import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const MAIN_JS = fileURLToPath(new URL('../../dist/main.js', import.meta.url))
const SESSION = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function spawnWorker(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const lines: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line)
        const match = /"url":"([^"]+)"/.exec(line)
        if (match && line.includes('listening')) resolve(match[1]!)
      })
    }
    void exited.then((code) => reject(new Error(`worker exited (${code}):\n${lines.join('\n')}`)))
  })
  return { child, url, lines, exited }
}

describe('sample worker graceful shutdown', { timeout: 30_000 }, () => {
  it('exits 0 within the grace period plus 1 s on SIGTERM with a client stuck mid-body, keeping every acknowledged record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-shutdown-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const dataDir = join(dir, 'worker')
    const graceMs = 1500
    const worker = await spawnWorker({ CARE_WORKER_DATA_DIR: dataDir, CARE_SHUTDOWN_GRACE: `${graceMs}ms` })
    const acknowledged: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${worker.url}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': SESSION },
        body: JSON.stringify({
          schema_version: '1.1',
          record_id: `01JNC3G8Z9X7W6V5T4S3R2Q1A${i}`,
          user_id: 'user-1',
          timestamp: '2026-03-01T12:00:00.000Z',
          source: 'ui',
          origin: 'human',
          performer_id: 'caregiver-1',
          text: 'Hello?',
        }),
      })
      expect(res.status).toBe(200)
      acknowledged.push(((await res.json()) as { record_id: string }).record_id)
    }
    const { hostname, port } = new URL(worker.url)
    const stuck: Socket = connect(Number(port), hostname)
    stuck.on('error', () => {})
    cleanups.push(() => {
      stuck.destroy()
    })
    await new Promise<void>((resolve) => stuck.once('connect', () => resolve()))
    stuck.write(
      `POST /infer HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\nx-session-id: ${SESSION}\r\ncontent-length: 300\r\n\r\n{"schema_version":`,
    )
    await new Promise((r) => setTimeout(r, 100))

    const signalled = performance.now()
    worker.child.kill('SIGTERM')
    expect(await worker.exited).toBe(0)
    const elapsed = performance.now() - signalled
    expect(elapsed).toBeLessThan(graceMs + 1000)
    expect(elapsed).toBeGreaterThanOrEqual(graceMs - 100)
    expect(worker.lines.filter((line) => /"level":(50|60)/.test(line))).toEqual([])

    const eventsDir = join(dataDir, 'events')
    const files = (await readdir(eventsDir)).filter((name) => name.endsWith('.jsonl'))
    const text = (await Promise.all(files.map((name) => readFile(join(eventsDir, name), 'utf8')))).join('')
    const records = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { record_id: string })
    for (const id of acknowledged) expect(records.map((r) => r.record_id)).toContain(id)
  })
})
