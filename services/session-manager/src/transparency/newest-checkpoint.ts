import { readFileSync } from 'node:fs'
import { type NoteVerifier, openCheckpoint } from '@care/tlog'
import { listCheckpointFiles } from './transparency-log.js'

/**
 * Checks a stored tree against the `newest` (default 8) checkpoints in `dir` this key signed at or
 * below the tree's size: undefined when its root at each one's size is the signed root (or there is no
 * such checkpoint, or no verifier), else why not. A cheap test (O(newest · log n) hashes, read from
 * wherever the tree keeps them) that a persisted tree still matches what was signed.
 *
 * @example
 * const reason = await newestCheckpointMismatch(tree, join(dataDir, 'checkpoints'), verifier)
 * if (reason) rebuild()
 */
export async function newestCheckpointMismatch(
  tree: { readonly size: number; root(size: number): Buffer | Promise<Buffer> },
  dir: string,
  verifier: NoteVerifier | undefined,
  newest = 8,
): Promise<string | undefined> {
  if (verifier === undefined) return undefined
  const files = listCheckpointFiles(dir).filter((f) => f.size <= tree.size)
  let checked = 0
  for (const file of files.reverse()) {
    if (checked === newest) break
    let checkpoint: ReturnType<typeof openCheckpoint>['checkpoint']
    try {
      ;({ checkpoint } = openCheckpoint(readFileSync(file.path, 'utf8'), [verifier], verifier.name))
    } catch {
      continue
    }
    if (checkpoint.size > tree.size) continue
    if (!(await tree.root(checkpoint.size)).equals(checkpoint.rootHash)) {
      return `the tree's root at ${checkpoint.size} is not the one ${file.path} signed`
    }
    checked++
  }
  return undefined
}

/**
 * The newest checkpoint file in `dir` (largest size, at most `maxSize` when given) and its note text,
 * or undefined when there is none (the signature is not checked here: `verify-export` checks it
 * against the verifier keys).
 *
 * @example
 * const newest = readNewestCheckpoint(join(dataDir, 'checkpoints'))
 * const provable = readNewestCheckpoint(join(dataDir, 'checkpoints'), persistedSize)
 */
export function readNewestCheckpoint(
  dir: string,
  maxSize = Number.POSITIVE_INFINITY,
): { path: string; size: number; note: string } | undefined {
  const newest = listCheckpointFiles(dir)
    .filter((f) => f.size <= maxSize)
    .at(-1)
  return newest === undefined
    ? undefined
    : { path: newest.path, size: newest.size, note: readFileSync(newest.path, 'utf8') }
}
