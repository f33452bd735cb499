import { leafHash, MemoryNodeStore, MerkleTree, signCheckpoint, TreeProofs } from '@care/tlog'
import { describe, expect, it } from 'vitest'
import { StoreUnavailableError } from '../store/event-store.js'
import { checkpointProver, TreeFilesError } from './export-proofs.js'
import { noteKeys } from './test-support/note-keys.js'

const ORIGIN = 'care.example/export-proofs'

describe('checkpointProver', () => {
  const lines = Array.from({ length: 6 }, (_, i) => Buffer.from(`line ${i}`))
  const store = new MemoryNodeStore()
  const tree = new MerkleTree(store)
  for (const line of lines) tree.append(line)
  const note = signCheckpoint({ origin: ORIGIN, size: 6, rootHash: tree.root() }, [noteKeys(ORIGIN).signer])
  const records = lines.map((line, i) => ({ seq: i + 1, leafHash: leafHash(line) }))
  const mismatch = (seq: number, err: Error) =>
    new TreeFilesError(`seq ${seq}: does not match (${err.message})`)

  it('reports a missing stored hash as a mismatch of the stored tree, but lets a database error through as it is', async () => {
    const unreachable = new StoreUnavailableError('database: Connection terminated', 'PG_ECONNRESET')
    const failing = checkpointProver(
      note,
      new TreeProofs({
        readNodes: async () => {
          throw unreachable
        },
      }),
      mismatch,
    )
    await expect(failing.prove(records)).rejects.toBe(unreachable)
    const lacking = checkpointProver(
      note,
      new TreeProofs({
        readNodes: async (keys) =>
          keys.map((k) => {
            if (k.level === 0 && k.index === 1) throw new RangeError('no hash at level 0, index 1')
            return store.node(k.level, k.index)
          }),
      }),
      mismatch,
    )
    await expect(lacking.prove(records)).rejects.toThrow(TreeFilesError)
    await expect(lacking.prove(records)).rejects.toThrow(
      /seq 1: does not match \(no hash at level 0, index 1\)/,
    )
  })

  it('refuses a proof that does not give the checkpoint root, and makes the reader forget what it kept', async () => {
    let forgotten = 0
    const damaged = checkpointProver(
      note,
      new TreeProofs({
        readNodes: async (keys) =>
          keys.map((k) => (k.level === 1 && k.index === 2 ? Buffer.alloc(32) : store.node(k.level, k.index))),
        forget: () => {
          forgotten++
        },
      }),
      mismatch,
    )
    await expect(damaged.prove(records.slice(0, 2))).rejects.toThrow(/seq 1: does not match/)
    expect(forgotten).toBe(1)
  })
})
