import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openWorkerEventLog, StorageUnavailableError } from './event-log.js'
import type { WorkerEvent } from './worker-records.js'

const dirs: string[] = []
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

function event(n: number): WorkerEvent {
  return {
    schema_version: '1.1',
    record_id: `01JNC3G8Z9X7W6V5T4S3R2${String(n).padStart(4, '0')}`,
    session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
    user_id: 'user-42',
    timestamp: '2026-03-01T12:00:00.000Z',
    source: 'sample_worker',
    origin: 'system',
    event: 'infer.received',
    input_record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
  }
}

describe('worker event log', () => {
  it('creates missing directories and appends whole lines in call order under concurrency', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-log-'))
    dirs.push(dir)
    const path = join(dir, 'nested', 'deeper', 'events.jsonl')
    const log = await openWorkerEventLog(path)
    await Promise.all(Array.from({ length: 50 }, (_, n) => log.append(event(n))))
    await log.close()
    const lines = (await readFile(path, 'utf8')).split('\n')
    expect(lines.pop()).toBe('')
    expect(lines.map((line) => JSON.parse(line).record_id)).toEqual(
      Array.from({ length: 50 }, (_, n) => event(n).record_id),
    )
  })

  it('keeps existing lines when reopened (append, never truncate)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-log-'))
    dirs.push(dir)
    const path = join(dir, 'events.jsonl')
    for (const n of [1, 2]) {
      const log = await openWorkerEventLog(path)
      await log.append(event(n))
      await log.close()
    }
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(2)
  })

  it('rejects with StorageUnavailableError when the disk is full, and keeps serving later appends', async () => {
    // /dev/full accepts open() and fails every write with ENOSPC: a real storage failure.
    const log = await openWorkerEventLog('/dev/full')
    await expect(log.append(event(1))).rejects.toBeInstanceOf(StorageUnavailableError)
    await expect(log.append(event(2))).rejects.toBeInstanceOf(StorageUnavailableError)
    await log.close()
  })
})
