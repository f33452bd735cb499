import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { tempDirs } from '@care/event-log/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from '../faults/test-support/service-harness.js'
import { createIdFactory } from '../ids/id-factory.js'
import { SessionLifecycleService } from '../sessions/session-lifecycle.js'
import { startInputAt, TEST_POLICY } from '../sessions/test-support/inputs.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { openEmbeddedStore } from '../store/embedded-store.js'
import { TREE_DIR, TransparencyLog } from './transparency-log.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())
const clock = new ManualClock()

async function open(dataDir: string, snapshots: boolean) {
  const { lines, logger } = captureLogger()
  const embedded = await openEmbeddedStore({
    dataDir,
    log: { maxFileBytes: 4096 },
    snapshots: { enabled: snapshots, everyEvents: 1_000_000, intervalMs: 3_600_000 },
    openTree: (replayStartsAfter) =>
      TransparencyLog.open({ dataDir, logger, ...(replayStartsAfter ? { replayStartsAfter } : {}) }),
    logger,
  })
  const service = new SessionLifecycleService(embedded.repository, {
    newId: createIdFactory(),
    timers: false,
    policy: TEST_POLICY,
    clock,
  })
  await service.recover()
  const tree = embedded.tree as TransparencyLog
  return { embedded, service, tree, lines }
}

async function startSome(service: SessionLifecycleService, n: number) {
  for (let i = 0; i < n; i++) await service.start(startInputAt(clock.now(), { user_id: `user-${i}` }))
}

describe('the transparency tree after a start from a snapshot', () => {
  it('trusts its stored tree up to the snapshot and hashes only the replayed tail', async () => {
    const dataDir = await dirs.make()
    const first = await open(dataDir, true)
    await startSome(first.service, 20)
    await first.embedded.snapshots.snapshotNow('test')
    await startSome(first.service, 7)
    first.embedded.repository.beforeClose = undefined // no shutdown snapshot: as after a crash
    await first.service.close()
    await first.tree.close()

    const resumed = await open(dataDir, true)
    expect(resumed.embedded.facts.snapshot).toBeDefined()
    expect(resumed.embedded.facts.events_replayed).toBe(7)
    expect(resumed.tree.size).toBe(27)
    expect(resumed.lines.filter((l) => /rebuild/.test(l.msg))).toEqual([])
    const root = resumed.tree.tree.root().toString('hex')
    await resumed.service.close()
    await resumed.tree.close()

    // A full replay (no snapshots) computes the same root.
    const replayed = await open(dataDir, false)
    expect(replayed.tree.tree.root().toString('hex')).toBe(root)
    await replayed.service.close()
    await replayed.tree.close()
  })

  it('rebuilds the tree from the log when its files no longer match the snapshot', async () => {
    const dataDir = await dirs.make()
    const first = await open(dataDir, true)
    await startSome(first.service, 12)
    const root = first.tree.tree.root().toString('hex')
    await first.service.close()
    await first.tree.close()
    rmSync(join(dataDir, TREE_DIR), { recursive: true, force: true })

    const resumed = await open(dataDir, true)
    expect(resumed.embedded.facts.snapshot).toBeDefined()
    expect(resumed.lines.some((l) => /do not match the snapshot/.test(l.msg))).toBe(true)
    expect(resumed.tree.size).toBe(12)
    expect(resumed.tree.tree.root().toString('hex')).toBe(root)
    await resumed.service.close()
    await resumed.tree.close()
  })
})
