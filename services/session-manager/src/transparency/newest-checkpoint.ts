import { readFileSync } from 'node:fs'
import { type MerkleTree, type NoteVerifier, openCheckpoint } from '@care/tlog'
import { listCheckpointFiles } from './transparency-log.js'

/**
 * Checks a stored tree against the `newest` (default 8) checkpoints in `dir` this key signed at or
 * below the tree's size: undefined when its root at each one's size is the signed root (or there is no
 * such checkpoint, or no verifier), else why not. A cheap test (O(newest · log n) hashes) that a
 * persisted tree still matches what was signed.
 *
 * @example
 * const reason = newestCheckpointMismatch(tree, join(dataDir, 'checkpoints'), verifier)
 * if (reason) rebuild()
 */
export function newestCheckpointMismatch(
  tree: MerkleTree,
  dir: string,
  verifier: NoteVerifier | undefined,
  newest = 8,
): string | undefined {
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
    if (!tree.root(checkpoint.size).equals(checkpoint.rootHash)) {
      return `the tree's root at ${checkpoint.size} is not the one ${file.path} signed`
    }
    checked++
  }
  return undefined
}
