import { EventLog } from '@care/event-log'
import { type CrashKind, PowerLossFileSystem, sampleEvent } from '@care/event-log/testing'
import { seededRandom, timeoutMs } from '@care/test-kit'
import { describe, expect, it } from 'vitest'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { DATA_DIR, freshDisk } from './test-support/service-harness.js'

const EVENTS = `${DATA_DIR}/events`
const MAX_FILE_BYTES = 1500

/** A copy of the disk as it is now (every file durable), on a new simulated machine. */
function cloneDisk(from: PowerLossFileSystem, seed: number): PowerLossFileSystem {
  const to = new PowerLossFileSystem({ random: seededRandom(seed) })
  for (const [name, bytes] of from.snapshot(DATA_DIR)) to.put(`${DATA_DIR}/${name}`, bytes)
  return to
}

function segments(fs: PowerLossFileSystem): Map<string, Buffer> {
  return new Map([...fs.snapshot(EVENTS)].filter(([name]) => name.endsWith('.jsonl')))
}

/** Damage that recovery must repair: a torn last append, or (with repair) an edited line in segment 1. */
async function damagedDisk(kind: 'torn-tail' | 'corrupt'): Promise<PowerLossFileSystem> {
  const fs = await freshDisk()
  const { log } = await EventLog.open({ dir: DATA_DIR, fs, maxFileBytes: MAX_FILE_BYTES })
  for (let i = 1; i <= 9; i++) await log.append(sampleEvent(i))
  await log.close()
  const names = [...segments(fs).keys()]
  expect(names.length).toBeGreaterThan(2)
  const damaged = cloneDisk(fs, 0)
  if (kind === 'torn-tail') {
    const last = names.at(-1)!
    const bytes = fs.contents(`${EVENTS}/${last}`)!
    damaged.put(`${EVENTS}/${last}`, bytes.subarray(0, bytes.length - 37))
  } else {
    const first = fs.contents(`${EVENTS}/${names[0]}`)!.toString('utf8')
    // Not valid JSON any more (a content edit before a checkpoint is verifyLog's job, not recovery's).
    damaged.put(`${EVENTS}/${names[0]}`, Buffer.from(first.replace('"device":"tablet"', '"device":tablet"')))
  }
  return damaged
}

const CASES: ['torn-tail' | 'corrupt', CrashKind][] = [
  ['torn-tail', 'power-loss'],
  ['torn-tail', 'process-kill'],
  ['torn-tail', 'torn'],
  ['corrupt', 'power-loss'],
  ['corrupt', 'process-kill'],
  ['corrupt', 'torn'],
]

describe('a crash during recovery', () => {
  it.each(CASES)(
    'gives a byte-identical log on the next recovery (%s, crash kind %s, at every mutating call)',
    async (damage, crashKind) => {
      const repair = damage === 'corrupt'
      const damaged = await damagedDisk(damage)
      const reference = cloneDisk(damaged, 1)
      const clean = await EventLog.open({
        dir: DATA_DIR,
        fs: reference,
        repair,
        maxFileBytes: MAX_FILE_BYTES,
      })
      await clean.log.close()
      const expected = segments(reference)
      expect(clean.report.cuts.length).toBeGreaterThan(0)

      let crashed = true
      let k = 1
      for (; crashed; k++) {
        const fs = cloneDisk(damaged, k)
        fs.crashAt(k)
        try {
          const { log } = await EventLog.open({ dir: DATA_DIR, fs, repair, maxFileBytes: MAX_FILE_BYTES })
          await log.close()
        } catch (err) {
          if (!fs.crashed) throw err
        }
        crashed = fs.crashed
        if (!crashed) fs.crash()
        fs.reboot(crashKind)
        const again = await EventLog.open({ dir: DATA_DIR, fs, repair, maxFileBytes: MAX_FILE_BYTES })
        expect(again.report.head, `crash at mutating call ${k}`).toEqual(clean.report.head)
        await again.log.close()
        expect(segments(fs), `crash at mutating call ${k}`).toEqual(expected)
        // The cut bytes are never lost: each .broken file ends with what the clean recovery saved.
        for (const [name, bytes] of reference.snapshot(EVENTS)) {
          if (!name.endsWith('.broken')) continue
          const saved = fs.contents(`${EVENTS}/${name}`)
          expect(saved?.subarray(saved.length - bytes.length), `${name} after crash at ${k}`).toEqual(bytes)
        }
        expect(await verifySessionLog(DATA_DIR, { fs })).toMatchObject({ ok: true, head: clean.report.head })
      }
      expect(k).toBeGreaterThan(5)
    },
    timeoutMs(30_000),
  )
})
