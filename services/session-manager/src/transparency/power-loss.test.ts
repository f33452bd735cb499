import { EventLog } from '@care/event-log'
import { type CrashKind, PowerLossFileSystem, sampleEvent } from '@care/event-log/testing'
import { seededRandom } from '@care/test-kit'
import { generateNoteKey, MemoryNodeStore, type NodeStore, parseSignerKey } from '@care/tlog'
import { describe, expect, it } from 'vitest'
import {
  independentOpenCheckpoint,
  referenceRoot,
} from '../../../../packages/tlog/src/test-support/independent-verifier.js'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { logLines } from './log-lines.js'
import { CHECKPOINTS_DIR, TransparencyLog, type TreeStorage } from './transparency-log.js'

const DIR = '/data'
const { signerKey, verifierKey } = generateNoteKey('care.example/power-loss')
const signer = parseSignerKey(signerKey)

/**
 * Tree storage that loses what a crash loses: hashes not yet flushed are gone after any crash, and
 * flushed but unsynced hashes survive a power loss only as a random prefix per level (the level files
 * are not fsync'd while the service runs), so levels come back ragged, as FileNodeStore can find them.
 */
class CrashingTreeStorage implements TreeStorage {
  /** Per level: what the files hold (page cache), and how much of it is synced. */
  #files: Buffer[][] = []
  #synced: number[] = []

  open(): NodeStore & { sync(): void } {
    // Like FileNodeStore.open: cut back to the largest leaf count every level covers.
    let leaves = this.#files[0]?.length ?? 0
    for (let level = 1; 2 ** level <= leaves; level++) {
      leaves = Math.min(leaves, ((this.#files[level]?.length ?? 0) + 1) * 2 ** level - 1)
    }
    const memory = new MemoryNodeStore()
    this.#files = this.#files.map((hashes, level) => hashes.slice(0, Math.floor(leaves / 2 ** level)))
    for (const [level, hashes] of this.#files.entries()) {
      for (const [i, h] of hashes.entries()) memory.put(level, i, h)
    }
    const pending: { level: number; index: number; hash: Buffer }[] = []
    const files = () => this.#files
    const synced = () => this.#synced
    return {
      get leafCount() {
        return memory.leafCount
      },
      node: (level, index) => memory.node(level, index),
      put(level, index, hash) {
        memory.put(level, index, hash)
        pending.push({ level, index, hash })
      },
      truncate(leafCount) {
        memory.truncate(leafCount)
        pending.length = 0
        for (const [level, hashes] of files().entries())
          hashes.length = Math.min(hashes.length, Math.floor(leafCount / 2 ** level))
      },
      flush() {
        for (const { level, index, hash } of pending.splice(0)) {
          const hashes = files()[level] ?? []
          files()[level] = hashes
          if (index === hashes.length) hashes.push(hash)
        }
      },
      sync() {
        this.flush()
        for (const [level, hashes] of files().entries()) synced()[level] = hashes.length
      },
      close() {},
    }
  }

  remove(): void {
    this.#files = []
    this.#synced = []
  }

  /** What survives the crash: everything flushed (process kill) or a random unsynced prefix (power loss). */
  crash(kind: CrashKind, random: () => number, corrupt: boolean): void {
    if (kind !== 'process-kill') {
      this.#files = this.#files.map((hashes, level) => {
        const synced = Math.min(this.#synced[level] ?? 0, hashes.length)
        return hashes.slice(0, synced + Math.floor(random() * (hashes.length - synced + 1)))
      })
    }
    const level0 = this.#files[0]
    if (corrupt && level0 && level0.length > 0) {
      const i = Math.floor(random() * level0.length)
      const bad = Buffer.from(level0[i]!)
      bad[0]! ^= 1
      level0[i] = bad
    }
  }
}

/** Appends in groups (concurrent appends share one fdatasync), checkpointing every 2 records. */
const BATCHES = [1, 2, 1, 3]

async function openStack(fs: PowerLossFileSystem, storage: CrashingTreeStorage) {
  const tlog = TransparencyLog.open({
    dataDir: DIR,
    signer,
    everyRecords: 2,
    intervalMs: 60_000,
    fs,
    treeStorage: storage,
  })
  const { log } = await EventLog.open({ dir: DIR, fs, observer: tlog.observer, maxFileBytes: 2500 })
  try {
    await tlog.finishRecovery(log.head.seq)
  } catch (err) {
    await log.close().catch(() => {})
    throw err
  }
  return { tlog, log }
}

/** Runs the workload; with `crashAt`, the power goes out at that mutating call. */
async function workload(fs: PowerLossFileSystem, storage: CrashingTreeStorage, crashAt?: number) {
  if (crashAt !== undefined) fs.crashAt(crashAt)
  try {
    const { tlog, log } = await openStack(fs, storage)
    let n = log.head.seq
    for (const size of BATCHES) {
      const batch = Array.from({ length: size }, () => sampleEvent(++n))
      await Promise.allSettled(batch.map((e) => log.append(e)))
      if (fs.crashed) break
    }
    await log.close().catch(() => {})
    await tlog.close()
  } catch (err) {
    if (!fs.crashed) throw err
  }
}

async function freshDisk(random: () => number): Promise<PowerLossFileSystem> {
  const fs = new PowerLossFileSystem({ random })
  await fs.mkdir(DIR)
  await fs.syncDir('/')
  return fs
}

async function linesOf(fs: PowerLossFileSystem): Promise<Buffer[]> {
  const lines: Buffer[] = []
  for await (const line of logLines(DIR, fs)) lines.push(Buffer.from(line))
  return lines
}

/** After the crash: the log verifies, the tree is the log's, every checkpoint covers durable records only. */
async function expectRecovered(fs: PowerLossFileSystem, storage: CrashingTreeStorage, where: string) {
  const { tlog, log } = await openStack(fs, storage)
  const records = log.head.seq
  const report = await verifySessionLog(DIR, { fs })
  expect(report.ok, where).toBe(true)
  const lines = await linesOf(fs)
  expect(lines.length, where).toBe(records)
  expect(tlog.size, where).toBe(records)
  expect(tlog.tree.root().equals(referenceRoot(lines)), where).toBe(true)
  expect(tlog.signingDisabled, where).toBeUndefined()
  const names = fs.fileNames(`${DIR}/${CHECKPOINTS_DIR}`)
  expect(
    names.filter((name) => name.includes('.tmp-')),
    where,
  ).toEqual([])
  for (const name of names) {
    const checkpoint = independentOpenCheckpoint(
      fs.contents(`${DIR}/${CHECKPOINTS_DIR}/${name}`)!.toString('utf8'),
      verifierKey,
    )
    expect(checkpoint, `${where}: ${name}`).toBeDefined()
    // Never a checkpoint for records the crash took away: it covers durable records, with their root.
    expect(checkpoint!.size, `${where}: ${name}`).toBeLessThanOrEqual(records)
    expect(
      checkpoint!.root.equals(referenceRoot(lines.slice(0, checkpoint!.size))),
      `${where}: ${name}`,
    ).toBe(true)
  }
  if (records > 0) expect(tlog.latestCheckpoint?.size, where).toBe(records)
  // And it carries on: one more record, a checkpoint for it at shutdown.
  await log.append(sampleEvent(records + 1))
  await log.close()
  await tlog.close()
  const after = independentOpenCheckpoint(tlog.latestCheckpoint!.note, verifierKey)!
  expect(after.size, where).toBe(records + 1)
  expect(after.root.equals(referenceRoot(await linesOf(fs))), where).toBe(true)
}

describe('power loss while the tree and checkpoints are written', () => {
  it('at every crash point the log verifies, the tree is resumed or rebuilt, and no checkpoint covers lost records', async () => {
    const probe = await freshDisk(seededRandom(1))
    const before = probe.mutations
    await workload(probe, new CrashingTreeStorage())
    const calls = probe.mutations - before
    expect(calls).toBeGreaterThan(30)
    expect(probe.fileNames(`${DIR}/${CHECKPOINTS_DIR}`).length).toBeGreaterThanOrEqual(3)

    const kinds: CrashKind[] = ['power-loss', 'torn', 'process-kill']
    for (let crashAt = 1; crashAt <= calls; crashAt++) {
      for (const [k, kind] of kinds.entries()) {
        const random = seededRandom(crashAt * 7 + k)
        const fs = await freshDisk(random)
        const storage = new CrashingTreeStorage()
        await workload(fs, storage, crashAt)
        expect(fs.crashed, `crash at ${crashAt}`).toBe(true)
        fs.reboot(kind)
        storage.crash(kind, random, crashAt % 5 === 0)
        await expectRecovered(fs, storage, `${kind} at call ${crashAt}`)
      }
    }
  }, 120_000)
})
