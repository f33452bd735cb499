import { type CrashKind, loopTurnsDuring, PowerLossFileSystem } from '@care/event-log/testing'
import { describe, expect, it } from 'vitest'
import type { HotState } from './embedded-session-repository.js'
import {
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotInSlices,
  type SessionSnapshot,
  SNAPSHOTS_KEPT,
  SnapshotFiles,
  snapshotFileName,
} from './snapshot-files.js'

const DATA = '/data'

function hotState(sessions: number): HotState<number> {
  return {
    sessions: Array.from({ length: sessions }, (_, i) => ({
      state: {
        sessionId: `S${i}`,
        userId: 'u',
        startedAt: 1,
        idleTimeoutMs: 1000,
        maxDurationMs: 2000,
        lastActivityAt: 1,
        lastEventAt: 1,
        eventCount: 1,
      },
      refs: [i],
    })),
    answers: [{ recordId: 'R1', digest: 'sha256:00', ref: 0 }],
    newestEventAt: 1,
    answersFrom: 0,
  }
}

function snapshotAt(seq: number, sessions = 2): SessionSnapshot<number> {
  return { point: { seq }, createdAt: '2026-11-29T00:00:00.000Z', hot: hotState(sessions) }
}

async function usable(files: SnapshotFiles<number>): Promise<{ seqs: number[]; problems: string[] }> {
  const seqs: number[] = []
  const problems: string[] = []
  for await (const found of files.newestFirst()) {
    if ('snapshot' in found) seqs.push(found.snapshot.point.seq)
    else problems.push(found.problem)
  }
  return { seqs, problems }
}

describe('snapshot files', () => {
  it('round-trips a snapshot byte for byte and lists snapshots newest first', async () => {
    const fs = new PowerLossFileSystem()
    const files = new SnapshotFiles<number>(fs, DATA)
    await files.write(snapshotAt(5))
    await files.write(snapshotAt(9, 3))
    const found = []
    for await (const candidate of files.newestFirst()) found.push(candidate)
    expect(found.map((f) => f.seq)).toEqual([9, 5])
    expect(found[0]).toMatchObject({ snapshot: snapshotAt(9, 3) })
    expect(fs.fileNames(`${DATA}/snapshots`).sort()).toEqual([snapshotFileName(5), snapshotFileName(9)])
  })

  it('encodes in slices exactly the bytes of one JSON.stringify of the snapshot', async () => {
    for (const sessions of [0, 1, 511, 512, 1300]) {
      const snapshot: SessionSnapshot<number> = {
        ...snapshotAt(40, sessions),
        tree: { size: 40, root: 'ab'.repeat(32) },
      }
      snapshot.hot.sessions[0]?.refs.push(7)
      const second = snapshot.hot.sessions[1]
      if (second) second.state = { ...second.state, userId: 'ü "quoted" \u2028 \u{1F600}' }
      const bytes = await encodeSnapshotInSlices(snapshot, 0)
      expect(bytes).toEqual(encodeSnapshot(snapshot))
      const whole = JSON.stringify({
        point: snapshot.point,
        created_at: snapshot.createdAt,
        tree: snapshot.tree,
        hot: snapshot.hot,
      })
      expect(bytes.subarray(bytes.indexOf(0x0a) + 1, -1).toString('utf8')).toBe(whole)
      expect(decodeSnapshot(bytes)).toEqual(snapshot)
    }
    const withoutTree = snapshotAt(3, 2)
    expect(decodeSnapshot(await encodeSnapshotInSlices(withoutTree, 0))).toEqual(withoutTree)
  })

  it('leaves the event loop free while it encodes many sessions', async () => {
    const turns = await loopTurnsDuring(() => encodeSnapshotInSlices(snapshotAt(1, 5_000), 0))
    // One turn at least per 512 sessions.
    expect(turns).toBeGreaterThanOrEqual(9)
  })

  it(`keeps only the newest ${SNAPSHOTS_KEPT} snapshots`, async () => {
    const fs = new PowerLossFileSystem()
    const files = new SnapshotFiles<number>(fs, DATA)
    for (const seq of [1, 2, 3, 4, 5]) await files.write(snapshotAt(seq))
    expect((await usable(files)).seqs).toEqual([5, 4, 3])
  })

  it('rejects a corrupt, truncated, padded or other-version snapshot with the reason', () => {
    const bytes = encodeSnapshot(snapshotAt(7))
    expect(decodeSnapshot(bytes)).toEqual(snapshotAt(7))
    const flipped = Buffer.from(bytes)
    const at = flipped.length - 10
    flipped.writeUInt8(flipped.readUInt8(at) ^ 0x01, at)
    expect(decodeSnapshot(flipped)).toBe('body checksum mismatch')
    expect(decodeSnapshot(bytes.subarray(0, bytes.length - 5))).toMatch(/^truncated/)
    expect(decodeSnapshot(Buffer.concat([bytes, Buffer.from('x')]))).toMatch(/^truncated or padded/)
    const other = Buffer.from(bytes.toString('utf8').replace('"version":1', '"version":2'))
    expect(decodeSnapshot(other)).toBe('version 2 is not 1')
    expect(decodeSnapshot(Buffer.from('garbage'))).toBe('no header line')
  })

  it('names a snapshot whose file name and contents disagree as unusable', async () => {
    const fs = new PowerLossFileSystem()
    fs.put(`${DATA}/snapshots/${snapshotFileName(3)}`, encodeSnapshot(snapshotAt(8)))
    expect(await usable(new SnapshotFiles<number>(fs, DATA))).toEqual({ seqs: [], problems: ['names seq 8'] })
  })

  for (const kind of ['power-loss', 'torn', 'process-kill'] as CrashKind[]) {
    it(`a ${kind} at every call while writing a snapshot leaves the previous one or the new one, never a bad one trusted`, async () => {
      // Count the mutating calls of one write (and its pruning), then crash at each of them in turn.
      const probe = new PowerLossFileSystem()
      const probeFiles = new SnapshotFiles<number>(probe, DATA)
      await probeFiles.write(snapshotAt(10))
      const before = probe.mutations
      await probeFiles.write(snapshotAt(20, 50))
      const callsPerWrite = probe.mutations - before
      expect(callsPerWrite).toBeGreaterThanOrEqual(5)
      for (let at = 1; at <= callsPerWrite; at++) {
        const fs = new PowerLossFileSystem({ random: () => 0.5 })
        await fs.mkdir(DATA) // the data dir exists (the log made it durable)
        await fs.syncDir('/')
        const files = new SnapshotFiles<number>(fs, DATA)
        await files.write(snapshotAt(10))
        fs.crashAt(at)
        await files.write(snapshotAt(20, 50)).catch((e: unknown) => {
          expect((e as { code?: string }).code).toBe('ECRASHED')
        })
        fs.reboot(kind)
        const { seqs } = await usable(files)
        expect([[20, 10], [10], [20]]).toContainEqual(seqs)
        if (seqs[0] === 20) expect((await usable(files)).problems).toEqual([])
        // The next write cleans up what the crash left (a temporary file).
        await files.write(snapshotAt(30))
        expect(fs.fileNames(`${DATA}/snapshots`).filter((n) => n.includes('.tmp-'))).toEqual([])
        expect((await usable(files)).seqs[0]).toBe(30)
      }
    })
  }
})
