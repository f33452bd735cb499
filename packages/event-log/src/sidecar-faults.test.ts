import { afterEach, describe, expect, it } from 'vitest'
import type { ChainedRecord } from './chain.js'
import { EventLog, type OpenLogOptions } from './event-log.js'
import type { LogPosition } from './recovery.js'
import { FaultyFileSystem } from './testing/faulty-file-system.js'
import { sampleEvent, tempDirs } from './testing/log-fixtures.js'
import { type CrashKind, PowerLossFileSystem } from './testing/power-loss-file-system.js'
import { verifyLog } from './verify.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

type Sample = Record<string, unknown>
const DATA_DIR = '/data'
const keyed: Pick<OpenLogOptions<Sample>, 'indexKeys' | 'recordTime' | 'maxFileBytes'> = {
  maxFileBytes: 1500,
  indexKeys: (r) => [`s:${r.session_id}`, `e:${r.event}`],
  recordTime: (r) => Date.parse(String(r.timestamp)),
}
const silent = { info() {}, warn() {}, error() {} }

function lcg(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

async function positionsOf(log: EventLog<Sample>, key: string): Promise<LogPosition[]> {
  const out: LogPosition[] = []
  for await (const p of log.lookup(key)) out.push(p)
  return out
}

/** Events 1..14: sessions 1..7, each started then ended, so every session has two records. */
const EVENTS = Array.from({ length: 14 }, (_, i) =>
  i < 7 ? sampleEvent(i + 1, 'session.start', i + 1) : sampleEvent(i + 1, 'session.end', i - 6),
)

describe('sidecar index and digest writing under crashes', () => {
  it.each<CrashKind>(['power-loss', 'torn'])(
    'at every mutating call (%s): acknowledged events are all found by lookup, nothing half-written is trusted',
    async (kind) => {
      let crashed = true
      let points = 0
      for (let k = 1; crashed; k++) {
        const fs = new PowerLossFileSystem({ random: lcg(k) })
        await fs.mkdir(DATA_DIR)
        await fs.syncDir('/')
        const { log } = await EventLog.open<Sample>({ dir: DATA_DIR, fs, logger: silent, ...keyed })
        fs.crashAt(k)
        const acknowledged: ChainedRecord<Sample>[] = []
        for (const event of EVENTS) {
          try {
            acknowledged.push((await log.append(event)).record)
          } catch {
            break
          }
        }
        await log.close().catch(() => {})
        crashed = fs.crashed
        fs.reboot(kind)
        points++

        const { log: again, report } = await EventLog.open<Sample>({
          dir: DATA_DIR,
          fs,
          logger: silent,
          ...keyed,
        })
        expect({ k, seq: report.head.seq }).toEqual({
          k,
          seq: Math.max(report.head.seq, acknowledged.length),
        }) // k names the crash point
        for (const record of acknowledged) {
          const found = await again.read(await positionsOf(again, `s:${record.session_id}`))
          expect(found.map((r) => r.seq)).toContain(record.seq)
        }
        const ends = await again.read(await positionsOf(again, 'e:session.end'))
        expect(ends.map((r) => r.seq)).toEqual(
          acknowledged.filter((r) => r.event === 'session.end').map((r) => r.seq),
        )
        const scrub = await again.scrub()
        expect(scrub.lastResult).toBe('ok')
        await again.close()
        expect(await verifyLog(DATA_DIR, { fs })).toMatchObject({ ok: true })
      }
      expect(points).toBeGreaterThan(40)
    },
    120_000,
  )
})

describe('sidecar writing under I/O errors', () => {
  it('a failed index write at seal fails no append; the next lookup rebuilds the index', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const warnings: string[] = []
    const logger = { info() {}, error() {}, warn: (_o: object, m: string) => warnings.push(m) }
    const { log } = await EventLog.open<Sample>({ dir, fs, logger, ...keyed })
    fs.fail('write', { errno: 'ENOSPC', path: '.idx', times: 'forever' })
    for (const event of EVENTS) await log.append(event)
    await log.close()
    expect(warnings.some((m) => m.includes("sealed segment's sidecars"))).toBe(true)
    fs.clear()

    warnings.length = 0
    const { log: again } = await EventLog.open<Sample>({ dir, fs, logger, ...keyed })
    const ends = await again.read(await positionsOf(again, 'e:session.end'))
    expect(ends).toHaveLength(7)
    expect(warnings.some((m) => m.includes('rebuilding a segment index'))).toBe(true)
    await again.close()
  })

  it('a read error while loading an index fails that lookup only; the next one loads it', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open<Sample>({ dir, fs, logger: silent, ...keyed })
    for (const event of EVENTS) await log.append(event)
    await log.close()
    const { log: again } = await EventLog.open<Sample>({ dir, fs, logger: silent, ...keyed })
    fs.fail('read', { errno: 'EIO', path: '.idx' })
    await expect(positionsOf(again, 'e:session.start')).rejects.toMatchObject({ code: 'EIO' })
    expect(await again.read(await positionsOf(again, 'e:session.start'))).toHaveLength(7)
    await again.close()
  })

  it('a digest that could not be written at seal is written by the scrub', async () => {
    const dir = await dirs.make()
    const fs = new FaultyFileSystem()
    const { log } = await EventLog.open<Sample>({ dir, fs, logger: silent, ...keyed })
    fs.fail('rename', { errno: 'EIO', path: '.digest.json', times: 'forever' })
    for (const event of EVENTS) await log.append(event)
    fs.clear()
    const status = await log.scrub()
    expect(status.lastResult).toBe('ok')
    expect(status.digestsRebuilt).toBeGreaterThan(0)
    await log.close()
  })
})
