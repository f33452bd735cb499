import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StorageError } from './errors.js'
import { EventLog } from './event-log.js'
import { FaultyFileSystem } from './testing/faulty-file-system.js'
import { linesOf, sampleEvent, segmentFiles, tempDirs } from './testing/log-fixtures.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

async function openWithFaults(options: { maxFileBytes?: number } = {}) {
  const dir = await dirs.make()
  const fs = new FaultyFileSystem()
  const { log } = await EventLog.open({ dir, fs, ...options })
  return { dir, fs, log }
}

const segmentSize = async (dir: string, file = 'events-000001.jsonl') =>
  (await stat(join(dir, 'events', file))).size

describe('EventLog under storage faults', () => {
  it('rejects with ENOSPC, leaves nothing half-written, and appends again once space returns', async () => {
    const { dir, fs, log } = await openWithFaults()
    await log.append(sampleEvent(1))
    const second = await log.append(sampleEvent(2))
    const durable = await segmentSize(dir)
    fs.fail('write', { errno: 'ENOSPC', bytesBeforeFailure: 100 })

    const error = await log.append(sampleEvent(3)).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(StorageError)
    expect(error).toMatchObject({ code: 'ENOSPC' })
    expect(await segmentSize(dir)).toBe(durable)
    expect(log.failed).toBe(false)
    expect(log.head).toEqual({ seq: 2, hash: second.record.hash })

    const third = await log.append(sampleEvent(3))
    expect(third.record).toMatchObject({ seq: 3, prev_hash: second.record.hash })
    await log.close()
    expect((await linesOf(dir)).length).toBe(3)
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 3 })
  })

  it('rejects every append of the failed batch and those queued behind it, then recovers', async () => {
    const { dir, fs, log } = await openWithFaults()
    await log.append(sampleEvent(1))
    const gate = fs.hold('write')
    const inFlight = log.append(sampleEvent(2))
    await gate.reached
    fs.fail('write', { errno: 'ENOSPC', times: 'forever' })
    const queued = Array.from({ length: 5 }, (_, i) => log.append(sampleEvent(i + 3)))
    gate.release()
    const settled = await Promise.allSettled([inFlight, ...queued])
    expect(settled.map((s) => s.status)).toEqual(Array(6).fill('rejected'))
    expect(settled.map((s) => (s as PromiseRejectedResult).reason.code)).toEqual(Array(6).fill('ENOSPC'))

    await expect(log.append(sampleEvent(2))).rejects.toMatchObject({ code: 'ENOSPC' })
    fs.clear('write')
    expect((await log.append(sampleEvent(2))).record.seq).toBe(2)
    await log.close()
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 2 })
  })

  it('recovers from a failed rotation (new file cannot be created) on the next append', async () => {
    const { dir, fs, log } = await openWithFaults({ maxFileBytes: 1000 })
    await log.append(sampleEvent(1))
    fs.fail('open', { errno: 'ENOSPC', path: 'events-000002' })
    await expect(log.append(sampleEvent(2))).rejects.toMatchObject({ code: 'ENOSPC' })
    const next = await log.append(sampleEvent(2))
    expect(next.position.file).toBe(2)
    expect(next.record.seq).toBe(2)
    await log.close()
    expect(await segmentFiles(dir)).toEqual(['events-000001.jsonl', 'events-000002.jsonl'])
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('stays failed after an fdatasync error: this and every later append reject with FSYNC_FAILED', async () => {
    const { dir, fs, log } = await openWithFaults()
    await log.append(sampleEvent(1))
    fs.fail('fdatasync', { errno: 'EIO' })
    await expect(log.append(sampleEvent(2))).rejects.toMatchObject({
      name: 'StorageError',
      code: 'FSYNC_FAILED',
    })
    expect(log.failed).toBe(true)
    await expect(log.append(sampleEvent(3))).rejects.toMatchObject({ code: 'FSYNC_FAILED' })
    expect(log.head.seq).toBe(1)
    await log.close()

    // Reopening lets recovery decide what reached the disk; whatever it keeps verifies.
    const { log: reopened, report } = await EventLog.open({ dir })
    expect(report.head.seq).toBeGreaterThanOrEqual(1)
    expect((await reopened.append(sampleEvent(9))).record.seq).toBe(report.head.seq + 1)
    await reopened.close()
    expect((await verifyLog(dir)).ok).toBe(true)
  })

  it('marks the log failed when a failed write cannot be rolled back', async () => {
    const { fs, log } = await openWithFaults()
    await log.append(sampleEvent(1))
    fs.fail('write', { errno: 'EIO' })
    fs.fail('ftruncate', { errno: 'EROFS' })
    await expect(log.append(sampleEvent(2))).rejects.toMatchObject({ code: 'EIO' })
    await new Promise((r) => setTimeout(r, 10))
    expect(log.failed).toBe(true)
    await expect(log.append(sampleEvent(2))).rejects.toMatchObject({ code: 'LOG_FAILED' })
    await log.close()
  })
})
