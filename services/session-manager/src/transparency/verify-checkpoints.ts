import { readFileSync } from 'node:fs'
import { type Checkpoint, CompactRange, type NoteVerifier, openCheckpoint } from '@care/tlog'
import { logLines } from './log-lines.js'
import { listCheckpointFiles } from './transparency-log.js'

/**
 * What `verifyAgainstCheckpoints` found: the log's record count, each checkpoint file's verdict, the
 * newest checkpoint the log was verified against, and every problem (empty when all is well).
 *
 * @example
 * const report = await verifyAgainstCheckpoints({ dataDir, checkpointsDir, verifiers })
 * if (report.problems.length > 0) process.exitCode = 1
 */
export interface CheckpointVerifyReport {
  records: number
  checkpoints: { file: string; size?: number; ok: boolean; problem?: string }[]
  newestVerified: { file: string; size: number; rootHash: string } | undefined
  problems: string[]
}

/**
 * Checks the log in `dataDir` (or any store's tree lines, `lines`, e.g. `postgresTreeLines`) against the signed checkpoints in `checkpointsDir`: each checkpoint must
 * carry a valid signature by one of `verifiers` (a checkpoint signed only by an unknown key is a
 * problem), and the Merkle tree over the log's lines must have each checkpoint's root at its size. Two
 * checkpoints that both match one append-only log are consistent with each other, so checkpoints only
 * grow; a log shorter than a checkpoint (a cut tail, a rolled-back copy) or with a different root at a
 * checkpoint's size (an edited line, even with a recomputed hash chain) is reported. One streaming pass,
 * O(log n) memory.
 *
 * @example
 * const report = await verifyAgainstCheckpoints({ dataDir: '/var/lib/care', checkpointsDir: '/mnt/archive/checkpoints', verifiers })
 */
export async function verifyAgainstCheckpoints(
  options: ({ dataDir: string } | { lines: AsyncIterable<Buffer> }) & {
    checkpointsDir: string
    verifiers: readonly NoteVerifier[]
  },
): Promise<CheckpointVerifyReport> {
  const problems: string[] = []
  const checkpoints: CheckpointVerifyReport['checkpoints'] = []
  const valid: { file: string; checkpoint: Checkpoint; index: number }[] = []
  for (const { path } of listCheckpointFiles(options.checkpointsDir)) {
    try {
      const { checkpoint } = openCheckpoint(readFileSync(path), options.verifiers)
      checkpoints.push({ file: path, size: checkpoint.size, ok: true })
      valid.push({ file: path, checkpoint, index: checkpoints.length - 1 })
    } catch (err) {
      const problem = `${path}: ${(err as Error).message}`
      checkpoints.push({ file: path, ok: false, problem })
      problems.push(problem)
    }
  }
  const origins = new Set(valid.map((v) => v.checkpoint.origin))
  if (origins.size > 1) problems.push(`checkpoints name several origins: ${[...origins].join(', ')}`)
  const fail = (v: (typeof valid)[number], problem: string) => {
    const entry = checkpoints[v.index]!
    entry.ok = false
    entry.problem = problem
    problems.push(`${v.file}: ${problem}`)
  }

  const bySize = [...valid].sort((a, b) => a.checkpoint.size - b.checkpoint.size)
  const range = new CompactRange()
  let next = 0
  const check = () => {
    while (next < bySize.length && bySize[next]!.checkpoint.size === range.size) {
      const v = bySize[next++]!
      if (!range.root().equals(v.checkpoint.rootHash)) {
        fail(v, `the log's Merkle root at size ${range.size} differs from the signed root (records changed)`)
      }
    }
  }
  check()
  const lines = 'lines' in options ? options.lines : logLines(options.dataDir)
  for await (const line of lines) {
    range.appendEntry(line)
    check()
  }
  for (const v of bySize.slice(next)) {
    fail(v, `signed ${v.checkpoint.size} records but the log has ${range.size} (tail cut or log rolled back)`)
  }
  const newest = bySize.filter((v) => checkpoints[v.index]!.ok).at(-1)
  return {
    records: range.size,
    checkpoints,
    newestVerified: newest && {
      file: newest.file,
      size: newest.checkpoint.size,
      rootHash: newest.checkpoint.rootHash.toString('base64'),
    },
    problems,
  }
}
