import { spawnSync } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LogLockedError } from './errors.js'
import { EventLog } from './event-log.js'
import { type LogFileSystem, nodeFileSystem } from './file-system.js'
import { acquireLock } from './lock.js'
import { sampleEvent, tempDirs } from './testing/log-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
  return Number(child.stdout.toString())
}

describe('data directory lock', () => {
  it('writes pid, hostname and start time to LOCK and refuses a second open naming the pid', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    const info = JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8'))
    expect(info).toMatchObject({ pid: process.pid, hostname: hostname(), started_at: expect.any(String) })
    const error = await EventLog.open({ dir }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(LogLockedError)
    expect(error).toMatchObject({ pid: process.pid })
    expect((error as Error).message).toContain(String(process.pid))
    await log.close()
  })

  it('releases the lock on close so the next open succeeds', async () => {
    const dir = await dirs.make()
    const first = await EventLog.open({ dir })
    await first.log.append(sampleEvent(1))
    await first.log.close()
    await expect(stat(join(dir, 'LOCK'))).rejects.toMatchObject({ code: 'ENOENT' })
    const second = await EventLog.open({ dir })
    expect(second.report.head.seq).toBe(1)
    await second.log.close()
  })

  it('takes over a stale lock left by a dead process and warns', async () => {
    const dir = await dirs.make()
    const pid = deadPid()
    const stale = { pid, hostname: hostname(), started_at: '2026-01-01T00:00:00.000Z' }
    await writeFile(join(dir, 'LOCK'), JSON.stringify(stale))
    const warnings: string[] = []
    const logger = { info() {}, warn: (_: object, m: string) => warnings.push(m), error() {} }
    const { log, report } = await EventLog.open({ dir, logger })
    expect(report.staleLock).toEqual(stale)
    expect(warnings.some((w) => w.includes(String(pid)))).toBe(true)
    expect(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid)
    await log.close()
  })

  it('lets exactly one of two simultaneous takeovers of the same stale lock win', async () => {
    const dir = await dirs.make()
    await writeFile(
      join(dir, 'LOCK'),
      JSON.stringify({ pid: deadPid(), hostname: hostname(), started_at: 'x' }),
    )
    // The slow loser: its unlink lands only after the winner has already written its new LOCK.
    let unlinks = 0
    const fs: LogFileSystem = {
      ...nodeFileSystem,
      async unlink(path) {
        if (++unlinks === 2) await new Promise((r) => setTimeout(r, 30))
        return nodeFileSystem.unlink(path)
      },
    }
    const results = await Promise.allSettled([acquireLock(fs, dir), acquireLock(fs, dir)])
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { name: 'LogLockedError' } })
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release()
  })

  it('refuses a lock held from another host, whose pid cannot be checked', async () => {
    const dir = await dirs.make()
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 1, hostname: 'elsewhere', started_at: 'x' }))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({
      name: 'LogLockedError',
      hostname: 'elsewhere',
    })
  })

  it('releases the lock when recovery fails', async () => {
    const dir = await dirs.make()
    const { log } = await EventLog.open({ dir })
    await log.append(sampleEvent(1))
    await log.append(sampleEvent(2))
    await log.close()
    const file = join(dir, 'events', 'events-000001.jsonl')
    await writeFile(file, (await readFile(file, 'utf8')).replace('"seq":1', '"seq":9'))
    await expect(EventLog.open({ dir })).rejects.toMatchObject({ name: 'LogCorruptError' })
    await expect(stat(join(dir, 'LOCK'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
