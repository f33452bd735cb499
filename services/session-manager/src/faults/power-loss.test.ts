import type { ChainedRecord } from '@care/event-log'
import { EventLog, readLog } from '@care/event-log'
import type { CrashKind, PowerLossFileSystem } from '@care/event-log/testing'
import { sampleEvent } from '@care/event-log/testing'
import { fcRuns, seededRandom, timeoutMs } from '@care/test-kit'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { type Acked, expectAckedDurable, scenario } from './test-support/http-workload.js'
import { type BootedService, bootService, DATA_DIR, freshDisk } from './test-support/service-harness.js'

const DIR = DATA_DIR

/** Every line of every segment ends with a newline and the log verifies: nothing half-written. */
async function expectWholeVerifiedLog(fs: PowerLossFileSystem, records: number): Promise<void> {
  const report = await verifySessionLog(DIR, { fs })
  expect(report, JSON.stringify(report)).toMatchObject({ ok: true, records })
  for (const [name, bytes] of fs.snapshot(`${DIR}/events`)) {
    if (name.endsWith('.jsonl') && bytes.length > 0) expect(bytes.at(-1)).toBe(0x0a)
  }
}

const crashScenario = fc.record({
  seed: fc.integer(),
  kind: fc.constantFrom<CrashKind>('power-loss', 'torn', 'process-kill'),
  // Crash at the nth mutating file-system call after the disk was set up (open and recovery included).
  crashAt: fc.integer({ min: 1, max: 100 }),
  // Appends issued together (group commit) before waiting for them.
  batches: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 12 }),
  maxFileBytes: fc.constantFrom(1500, 4000, 64 * 1024 * 1024),
  // Crash a second time while the first recovery runs.
  crashInRecoveryAt: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
})

describe('power loss (unsynced writes and directory entries are dropped)', () => {
  it(
    'keeps every acknowledged event, leaves nothing half-written and a verifying chain, at any crash point',
    async () => {
      await fc.assert(
        fc.asyncProperty(crashScenario, async (s) => {
          const fs = await freshDisk(seededRandom(s.seed))
          fs.crashAt(s.crashAt)
          const attempted: string[] = []
          const acked: string[] = []
          try {
            const { log } = await EventLog.open({ dir: DIR, fs, maxFileBytes: s.maxFileBytes })
            for (const size of s.batches) {
              const batch = Array.from({ length: size }, (_, i) => sampleEvent(attempted.length + i + 1))
              for (const e of batch) attempted.push(e.record_id as string)
              const settled = await Promise.allSettled(batch.map((e) => log.append(e)))
              for (const [i, r] of settled.entries())
                if (r.status === 'fulfilled') acked.push(batch[i]!.record_id as string)
              if (fs.crashed) break
            }
            await log.close()
          } catch (err) {
            if (!fs.crashed) throw err
          }
          // If the sequence finished first, the power goes out now.
          if (!fs.crashed) fs.crash()
          fs.reboot(s.kind)

          if (s.crashInRecoveryAt !== undefined) {
            fs.crashAt(s.crashInRecoveryAt)
            try {
              const first = await EventLog.open({ dir: DIR, fs, maxFileBytes: s.maxFileBytes })
              await first.log.close()
            } catch (err) {
              if (!fs.crashed) throw err
            }
            if (!fs.crashed) fs.crash()
            fs.reboot(s.kind)
          }

          const recovered: ChainedRecord[] = []
          const { log } = await EventLog.open({
            dir: DIR,
            fs,
            maxFileBytes: s.maxFileBytes,
            onRecord: (r) => recovered.push(r),
          })
          const ids = recovered.map((r) => r.record_id)
          // Recovered = the acknowledged events, then possibly some unacknowledged ones, all in order.
          expect(ids.slice(0, acked.length)).toEqual(acked)
          expect(ids).toEqual(attempted.slice(0, ids.length))
          const next = await log.append(sampleEvent(attempted.length + 1))
          expect(next.record.seq).toBe(recovered.length + 1)
          await log.close()
          await expectWholeVerifiedLog(fs, recovered.length + 1)
          const replayed: string[] = []
          for await (const { record } of readLog(DIR, { fs })) replayed.push(record.record_id as string)
          expect(replayed).toEqual([...ids, next.record.record_id])
        }),
        fcRuns('power-loss log', 250, 5000),
      )
    },
    timeoutMs(60_000, 1_800_000),
  )

  it("reopens after a SIGKILL even when the new process has the dead one's pid (pid 1 in a container)", async () => {
    // The page cache survives a killed process, so LOCK still names a pid; in a container the
    // restarted service is pid 1 again, i.e. the pid in LOCK is alive: it is this very process.
    const fs = await freshDisk()
    const { log } = await EventLog.open({ dir: DIR, fs })
    await log.append(sampleEvent(1))
    fs.crash()
    // The killed process's memory goes with it (in a test the same process lives on).
    await log.close().catch(() => {})
    fs.reboot('process-kill')
    const { log: again, report } = await EventLog.open({ dir: DIR, fs })
    expect(report.records).toBe(1)
    expect(report.staleLock).toMatchObject({ pid: process.pid })
    await again.close()
  })

  it('still refuses a second open of the same directory inside one process', async () => {
    const fs = await freshDisk()
    const { log } = await EventLog.open({ dir: DIR, fs })
    await expect(EventLog.open({ dir: DIR, fs })).rejects.toMatchObject({ name: 'LogLockedError' })
    await log.close()
    const { log: again } = await EventLog.open({ dir: DIR, fs })
    await again.close()
  })

  it(
    'loses no acknowledged session, touch or end when the power fails at any point under HTTP traffic',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 90 }),
          fc.constantFrom<CrashKind>('power-loss', 'torn', 'process-kill'),
          fc.integer(),
          async (crashAt, kind, seed) => {
            const disk = await freshDisk(seededRandom(seed))
            const clock = new ManualClock()
            const acked: Acked = { started: new Set(), ended: new Set(), touches: new Map() }
            disk.crashAt(crashAt)
            let booted: BootedService | undefined
            try {
              booted = await bootService({ fs: disk, dir: DATA_DIR, clock, maxFileBytes: 1500 })
            } catch (err) {
              if (!disk.crashed) throw err
            }
            if (booted) {
              // Once the power is gone every request answers 503: nothing more is acknowledged.
              await scenario(booted, clock, acked)
              await booted.stop()
            }
            await expectAckedDurable(disk, clock, acked, kind)
          },
        ),
        fcRuns('power-loss http', 200, 3000),
      )
    },
    timeoutMs(60_000, 1_800_000),
  )
})
