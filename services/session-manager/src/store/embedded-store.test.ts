import { archiveSegments } from '@care/event-log'
import { FaultyFileSystem, PowerLossFileSystem, tempDirs } from '@care/event-log/testing'
import { describe, expect, it } from 'vitest'
import { captureLogger } from '../faults/test-support/service-harness.js'
import { createIdFactory } from '../ids/id-factory.js'
import { SessionLifecycleService } from '../sessions/session-lifecycle.js'
import { endInputAt, MINUTE, startInputAt, TEST_POLICY } from '../sessions/test-support/inputs.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { openEmbeddedStore } from './embedded-store.js'
import { decodeSnapshot, encodeSnapshot, SNAPSHOTS_DIR } from './snapshot-files.js'

const DATA = '/data'
const clock = new ManualClock()

async function freshDisk(): Promise<PowerLossFileSystem> {
  const fs = new PowerLossFileSystem()
  await fs.mkdir(DATA)
  await fs.syncDir('/')
  return fs
}

async function open(fs?: PowerLossFileSystem | FaultyFileSystem, dataDir = DATA, maxFileBytes = 4096) {
  const { lines, logger } = captureLogger()
  const embedded = await openEmbeddedStore({
    dataDir,
    ...(fs ? { fs } : {}),
    log: { maxFileBytes },
    snapshots: { enabled: true, everyEvents: 1_000_000, intervalMs: 3_600_000 },
    logger,
  })
  const service = new SessionLifecycleService(embedded.repository, {
    newId: createIdFactory(),
    timers: false,
    policy: TEST_POLICY,
    clock,
  })
  await service.recover()
  return { embedded, service, lines }
}

async function startSome(service: SessionLifecycleService, n: number) {
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push((await service.start(startInputAt(clock.now()))).output.session_id)
  return ids
}

describe('starting the embedded store from snapshots', () => {
  it('falls back to an older snapshot when the newest is stale (the log was restored from an older backup)', async () => {
    const disk = await freshDisk()
    const first = await open(disk)
    const early = await startSome(first.service, 5)
    await first.embedded.snapshots.snapshotNow('test')
    const backup = disk.snapshot(`${DATA}/events`) // the log as it was at the older snapshot
    await startSome(first.service, 20)
    await first.service.close() // writes the newer snapshot
    // Restore the events directory from the backup, keep both snapshots.
    for (const name of disk.fileNames(`${DATA}/events`)) await disk.unlink(`${DATA}/events/${name}`)
    for (const [name, bytes] of backup) disk.put(`${DATA}/events/${name}`, bytes)
    expect(disk.fileNames(`${DATA}/${SNAPSHOTS_DIR}`)).toHaveLength(2)

    const again = await open(disk)
    expect(again.lines.some((l) => /does not fit the log/.test(l.msg))).toBe(true)
    expect(again.embedded.facts).toMatchObject({ skipped_snapshots: 1, events_replayed: 0 })
    expect(again.embedded.facts.snapshot).toContain('00000000000000000005')
    expect(await again.service.openSessions()).toBe(5)
    for (const id of early) expect(await again.service.describe(id)).toMatchObject({ status: 'open' })
    await again.service.close()
  })

  it('a snapshot that cannot be written (disk full) is logged and leaves the service and the older snapshot as they were', async () => {
    const disk = await freshDisk()
    const fs = new FaultyFileSystem(disk)
    const first = await open(fs)
    await startSome(first.service, 3)
    await first.embedded.snapshots.snapshotNow('test')
    await startSome(first.service, 2)
    fs.fail('write', { errno: 'ENOSPC', path: SNAPSHOTS_DIR, times: 'forever' })
    await first.embedded.snapshots.snapshotNow('test')
    expect(first.embedded.snapshots.failed).toBe(1)
    expect(first.lines.some((l) => l.level === 'error' && /could not write a snapshot/.test(l.msg))).toBe(
      true,
    )
    await startSome(first.service, 1) // writes still work
    await first.service.close() // the shutdown snapshot fails too
    fs.clear('write')

    const again = await open(fs)
    expect(again.embedded.facts.snapshot).toContain('00000000000000000003')
    expect(again.embedded.facts.events_replayed).toBe(3)
    expect(await again.service.openSessions()).toBe(6)
    expect(disk.fileNames(`${DATA}/${SNAPSHOTS_DIR}`).filter((n) => n.includes('.tmp-'))).toHaveLength(0)
    await again.service.close()
  })

  it('replays the whole log when the log after a snapshot does not continue its state', async () => {
    const disk = await freshDisk()
    const first = await open(disk)
    const ids = await startSome(first.service, 3)
    await first.embedded.snapshots.snapshotNow('test')
    await first.service.touch(endInputAt(clock.now(), ids[0]!))
    first.embedded.repository.beforeClose = undefined // no shutdown snapshot
    await first.service.close()
    // A well-formed snapshot whose state lacks a session the later log touches (a bug, or an edit).
    const [name] = disk.fileNames(`${DATA}/${SNAPSHOTS_DIR}`)
    const path = `${DATA}/${SNAPSHOTS_DIR}/${name}`
    const snapshot = decodeSnapshot(disk.contents(path)!)
    if (typeof snapshot === 'string') throw new Error(snapshot)
    snapshot.hot.sessions = snapshot.hot.sessions.filter((s) => s.state.sessionId !== ids[0])
    disk.put(path, encodeSnapshot(snapshot))

    const again = await open(disk)
    expect(again.lines.some((l) => l.level === 'warn' && /snapshot/.test(l.msg))).toBe(true)
    expect(again.embedded.facts).toMatchObject({ skipped_snapshots: 1, events_replayed: 4 })
    expect(await again.service.describe(ids[0]!)).toMatchObject({ status: 'open', event_count: 2 })
    await again.service.close()
  })

  it('answers a session whose segments retention archived with session_archived, the rest as before', async () => {
    const dirs = tempDirs()
    try {
      const dataDir = await dirs.make()
      const first = await open(undefined, dataDir)
      const ids: string[] = []
      for (let i = 0; i < 40; i++) {
        clock.advance(MINUTE)
        const [id] = await startSome(first.service, 1)
        await first.service.end(endInputAt(clock.now(), id!))
        ids.push(id!)
      }
      const cut = clock.now() - 10 * MINUTE
      await first.service.close()
      const report = await archiveSegments(dataDir, { before: cut, to: await dirs.make() })
      expect(report.archived.length).toBeGreaterThan(0)

      const again = await open(undefined, dataDir)
      await expect(again.service.describe(ids[0]!)).rejects.toMatchObject({ name: 'SessionArchivedError' })
      expect(await again.service.describe(ids[39]!)).toMatchObject({ status: 'ended' })
      await again.service.close()
    } finally {
      await dirs.cleanup()
    }
  })
})

describe("the active segment's index saved with each snapshot", () => {
  const ONE_SEGMENT = 1024 * 1024

  it('lets a start from the snapshot skip reading the active segment, with the same answers', async () => {
    const disk = await freshDisk()
    const first = await open(disk, DATA, ONE_SEGMENT)
    const ids = await startSome(first.service, 5)
    await first.service.end(endInputAt(clock.now(), ids[0]!))
    await first.service.close() // the shutdown snapshot saves the index too
    expect(disk.fileNames(`${DATA}/events`)).toContain('events-000001.active.idx')

    const again = await open(disk, DATA, ONE_SEGMENT)
    expect(again.embedded.facts.events_replayed).toBe(0)
    expect(await again.embedded.store.activePrefixBytesRead()).toBe(0)
    const closed = await again.service.timeline(ids[0]!)
    expect(closed?.events.map((e) => e.event)).toEqual(['session.start', 'session.end'])
    expect(await again.service.describe(ids[4]!)).toMatchObject({ status: 'open' })
    await again.service.close()
  })

  it('is saved at shutdown even when no event came since the snapshot (a log without one yet)', async () => {
    const disk = await freshDisk()
    const first = await open(disk, DATA, ONE_SEGMENT)
    await startSome(first.service, 3)
    await first.service.close()
    await disk.unlink(`${DATA}/events/events-000001.active.idx`)
    const idle = await open(disk, DATA, ONE_SEGMENT)
    expect(await idle.embedded.store.activePrefixBytesRead()).toBeGreaterThan(0)
    await idle.service.close()
    expect(disk.fileNames(`${DATA}/events`)).toContain('events-000001.active.idx')
    const again = await open(disk, DATA, ONE_SEGMENT)
    expect(await again.embedded.store.activePrefixBytesRead()).toBe(0)
    expect(await again.service.openSessions()).toBe(3)
    await again.service.close()
  })

  it('a crash at any point of writing the snapshot and the index leaves a correct start', async () => {
    for (let crashAt = 1; ; crashAt++) {
      const disk = await freshDisk()
      const first = await open(disk, DATA, ONE_SEGMENT)
      const ids = await startSome(first.service, 4)
      await first.service.end(endInputAt(clock.now(), ids[0]!))
      disk.crashAt(crashAt)
      await first.embedded.snapshots.snapshotNow('test')
      const crashed = disk.crashed
      first.embedded.repository.beforeClose = undefined
      await first.service.close().catch(() => {})
      disk.reboot('power-loss')

      const again = await open(disk, DATA, ONE_SEGMENT)
      expect(await again.service.openSessions()).toBe(3)
      const closed = await again.service.timeline(ids[0]!)
      expect(closed?.events.map((e) => e.event)).toEqual(['session.start', 'session.end'])
      for (const id of ids.slice(1)) {
        expect((await again.service.timeline(id))?.events.map((e) => e.event)).toEqual(['session.start'])
      }
      await again.service.close()
      if (!crashed) break // the snapshot and the index were written without reaching the crash point
      expect(crashAt).toBeLessThan(100)
    }
  })
})
