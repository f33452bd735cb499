import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StorageError } from './errors.js'
import { EventLog } from './event-log.js'
import type { LogPosition } from './recovery.js'
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
    fs.fail('write', { errno: 'ENOSPC', times: 'forever', path: '/events/' })
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

describe('opening on a full disk after a torn append', () => {
  it('opens (reads served), fails appends with ENOSPC, and finishes the cut into .broken once space returns', async () => {
    const dir = await dirs.make()
    const writer = await EventLog.open({ dir })
    await writer.log.append(sampleEvent(1))
    await writer.log.append(sampleEvent(2))
    await writer.log.close()
    const file = join(dir, 'events', 'events-000001.jsonl')
    const intact = await readFile(file)
    const torn = Buffer.from('{"event":"session.start","session_id":"01JS')
    await writeFile(file, torn, { flag: 'a' })

    // The disk is full: no log data can be written, in particular not the copy of the torn bytes (the
    // small LOCK file still can: as on the 1 MiB tmpfs where this was found).
    const fs = new FaultyFileSystem()
    fs.fail('write', { errno: 'ENOSPC', times: 'forever', path: '/events/' })
    const positions: LogPosition[] = []
    const { log, report } = await EventLog.open({
      dir,
      fs,
      onRecord: (_, position) => positions.push(position),
    })
    expect(report).toMatchObject({
      records: 2,
      cuts: [],
      pendingCut: { kind: 'torn-tail', line: 3, offset: intact.length, bytes: torn.length },
    })
    expect(log.pendingCut).toMatchObject({ line: 3 })
    expect(await log.read(positions)).toHaveLength(2)
    for (let i = 0; i < 3; i++) {
      await expect(log.append(sampleEvent(3))).rejects.toMatchObject({ name: 'StorageError', code: 'ENOSPC' })
    }
    // Nothing lost while waiting: the torn bytes are still where they were.
    expect(await readFile(file)).toEqual(Buffer.concat([intact, torn]))
    expect(log.failed).toBe(false)

    fs.clear('write')
    const third = await log.append(sampleEvent(3))
    expect(third.record.seq).toBe(3)
    expect(log.pendingCut).toBeUndefined()
    await log.close()
    expect(await readFile(`${file}.broken`)).toEqual(torn)
    expect(await verifyLog(dir)).toMatchObject({ ok: true, records: 3 })
  })
})
