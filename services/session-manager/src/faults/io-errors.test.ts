import { FaultyFileSystem, type FsOperation } from '@care/event-log/testing'
import { scaled, timeoutMs } from '@care/test-kit'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { type Acked, expectAckedDurable, scenario } from './test-support/http-workload.js'
import { type BootedService, bootService, DATA_DIR, freshDisk } from './test-support/service-harness.js'

const OPERATIONS: FsOperation[] = [
  'write',
  'fdatasync',
  'open',
  'read',
  'rename',
  'fsyncDir',
  'fsync',
  'ftruncate',
]
const MAX_N = scaled(40, 200)

describe('I/O errors at every call (Nth write, fsync, open, rename... fails once or forever)', () => {
  for (const op of OPERATIONS) {
    for (const times of [1, 'forever'] as const) {
      it(
        `never answers 2xx for an event that is not durable when ${op} #N fails ${times === 1 ? 'once' : 'forever'}, and verifies after restart`,
        async () => {
          let n = 1
          let triggered = true
          for (; triggered && n <= MAX_N; n++) {
            const disk = await freshDisk()
            const fs = new FaultyFileSystem(disk)
            const clock = new ManualClock()
            const acked: Acked = { started: new Set(), ended: new Set(), touches: new Map() }
            fs.fail(op, { nth: n, times, errno: 'EIO' })
            let booted: BootedService | undefined
            try {
              booted = await bootService({ fs, dir: DATA_DIR, clock, maxFileBytes: 1500 })
            } catch (err) {
              // Recovery itself hit the fault: the service does not start (and acknowledged nothing).
              expect((err as { code?: string }).code).toMatch(/EIO|FSYNC_FAILED|LOG_FAILED/)
            }
            if (booted) {
              await scenario(booted, clock, acked)
              if (!booted.store.healthy) {
                const ready = await booted.app.request('/readyz')
                expect(ready.status).toBe(503)
                expect(((await ready.json()) as { error: string }).error).toBe('storage_unavailable')
              }
              await booted.stop()
            }
            // The nth call never happened: the scenario ran to the end without the fault.
            triggered = fs.calls[op] >= n
            await expectAckedDurable(disk, clock, acked)
          }
          expect(triggered, `${op} still failing at N=${MAX_N}`).toBe(false)
        },
        timeoutMs(30_000),
      )
    }
  }
})
