import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readLog, verifyLog } from '@care/event-log'
import { afterEach, describe, expect, it } from 'vitest'
import { postJson, requestBody } from '../test-support/records.js'
import {
  type SpawnedSessionManager,
  spawnSessionManager,
  waitReady,
} from '../test-support/spawn-session-manager.js'

const dirs: string[] = []
const running: SpawnedSessionManager[] = []
const sockets: Socket[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(running.splice(0).map((sm) => sm.kill('SIGKILL')))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** Sends a request's headers and half its declared body, then nothing more. */
async function stuckMidBody(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  sockets.push(socket)
  socket.on('error', () => {})
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  const body = JSON.stringify(requestBody())
  socket.write(
    `POST /sessions.start HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 20)}`,
  )
  return socket
}

describe('graceful shutdown of the process', { timeout: 30_000 }, () => {
  it('exits 0 within the grace period plus 1 s on SIGTERM with a client stuck mid-body, losing nothing acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'care-shutdown-'))
    dirs.push(dir)
    const graceMs = 1500
    const sm = await spawnSessionManager({ CARE_DATA_DIR: dir, CARE_SHUTDOWN_GRACE: `${graceMs}ms` })
    running.push(sm)
    await waitReady(sm.url)
    const acknowledged: string[] = []
    for (let i = 0; i < 10; i++) {
      const res = await postJson(`${sm.url}/sessions.start`, requestBody())
      expect(res?.status).toBe(201)
      acknowledged.push(res!.body.session_id as string)
    }
    const stuck = await stuckMidBody(sm.url)
    await new Promise((r) => setTimeout(r, 100)) // let the server take the request in

    const signalled = performance.now()
    sm.child.kill('SIGTERM')
    const code = await sm.exited
    const elapsed = performance.now() - signalled

    expect(code).toBe(0)
    expect(elapsed).toBeLessThan(graceMs + 1000)
    expect(elapsed).toBeGreaterThanOrEqual(graceMs - 100) // the stuck request did get its grace
    expect(stuck.destroyed || stuck.readableEnded).toBe(true)
    // The reset of the stuck client is not an error-level log line.
    expect(sm.lines.filter((line) => /"level":(50|60)/.test(line))).toEqual([])
    expect(sm.lines.some((line) => line.includes('grace period expired'))).toBe(true)
    // The cut-off request is in the access log as 499 (client closed request), never acknowledged.
    const access = sm.lines.filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line))
    expect(access.filter((line) => line.status === 201)).toHaveLength(10)
    expect(access.filter((line) => line.status === 499)).toMatchObject([{ route: '/sessions.start' }])

    const started = new Set<string>()
    for await (const { record } of readLog(dir))
      if (record.event === 'session.start') started.add(record.session_id as string)
    for (const id of acknowledged) expect(started.has(id)).toBe(true)
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('exits at once when nothing is in flight', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'care-shutdown-'))
    dirs.push(dir)
    const sm = await spawnSessionManager({ CARE_DATA_DIR: dir })
    running.push(sm)
    await waitReady(sm.url)
    expect((await postJson(`${sm.url}/sessions.start`, requestBody()))?.status).toBe(201)
    const signalled = performance.now()
    expect(await sm.kill('SIGINT')).toBe(0)
    expect(performance.now() - signalled).toBeLessThan(2000) // far below the 10 s default grace
  })
})
