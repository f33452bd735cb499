import { describe, expect, it } from 'vitest'
import { leafHash } from './hash.js'
import { MerkleTree } from './merkle-tree.js'
import { MemoryNodeStore } from './node-store.js'
import { ProofError } from './proof.js'
import {
  type AsyncNodeReader,
  asyncNodeReader,
  consistencyProofNodes,
  inclusionProofNodes,
  type NodeKey,
  rootNodes,
  TreeProofs,
} from './proof-nodes.js'
import {
  independentVerifyConsistency,
  independentVerifyInclusion,
} from './test-support/independent-verifier.js'

const N = 300

function treeOf(n: number): { tree: MerkleTree; store: MemoryNodeStore } {
  const store = new MemoryNodeStore()
  const tree = new MerkleTree(store)
  for (let i = 0; i < n; i++) tree.append(Buffer.from(`entry ${i}`))
  return { tree, store }
}

/** An async reader that counts its calls and the nodes it was asked for. */
function countingReader(store: MemoryNodeStore): AsyncNodeReader & { calls: number; keys: NodeKey[] } {
  const inner = asyncNodeReader(store)
  const reader = {
    calls: 0,
    keys: [] as NodeKey[],
    async readNodes(keys: readonly NodeKey[]) {
      reader.calls++
      reader.keys.push(...keys)
      return inner.readNodes(keys)
    },
  }
  return reader
}

describe('TreeProofs over an asynchronous node reader', () => {
  const { tree, store } = treeOf(N)

  it('gives byte-identical inclusion proofs and roots to the synchronous tree, in one read each, for every (index, size)', async () => {
    for (let size = 1; size <= N; size += size < 40 ? 1 : 7) {
      for (const index of new Set([0, Math.floor(size / 2), size - 2, size - 1].filter((i) => i >= 0))) {
        const reader = countingReader(store)
        const got = await new TreeProofs(reader).inclusion(index, size)
        expect(got.proof).toEqual(tree.inclusionProof(index, size))
        expect(got.root).toEqual(tree.root(size))
        expect(got.leafHash).toEqual(leafHash(Buffer.from(`entry ${index}`)))
        expect(independentVerifyInclusion(index, size, got.leafHash, got.proof, got.root)).toBe(true)
        expect(reader.calls).toBe(1)
        // O(log n) nodes: the path, the root's compact range and the leaf, each once.
        expect(reader.keys.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size + 1)) + 1)
        expect(new Set(reader.keys.map((k) => `${k.level}/${k.index}`)).size).toBe(reader.keys.length)
      }
    }
  })

  it('gives byte-identical consistency proofs and both roots for sizes that are and are not powers of two', async () => {
    const proofs = new TreeProofs(asyncNodeReader(store))
    for (const [size1, size2] of [
      [1, 1],
      [1, 2],
      [3, 8],
      [7, 300],
      [8, 300],
      [255, 256],
      [256, 300],
      [299, 300],
      [300, 300],
    ] as const) {
      const got = await proofs.consistency(size1, size2)
      expect(got.proof).toEqual(tree.consistencyProof(size1, size2))
      expect(got.root1).toEqual(tree.root(size1))
      expect(got.root2).toEqual(tree.root(size2))
      expect(independentVerifyConsistency(size1, size2, got.proof, got.root1, got.root2)).toBe(true)
    }
  })

  it('proves many leaves against one size in a single read', async () => {
    const reader = countingReader(store)
    const indices = [0, 5, 77, 150, 298, 299]
    const got = await new TreeProofs(reader).inclusionProofs(indices, N)
    expect(got).toEqual(indices.map((i) => tree.inclusionProof(i, N)))
    expect(reader.calls).toBe(1)
  })

  it('lists the nodes a proof needs without reading any, and refuses sizes and indices out of range', () => {
    expect(rootNodes(10)).toEqual([
      { level: 3, index: 0 },
      { level: 1, index: 4 },
    ])
    expect(rootNodes(0)).toEqual([])
    // Leaf 9 of 10: its sibling leaf 8, then the left subtree of 8.
    expect(inclusionProofNodes(9, 10)).toEqual([
      { level: 3, index: 0 },
      { level: 0, index: 8 },
    ])
    expect(consistencyProofNodes(4, 4)).toEqual([])
    expect(() => inclusionProofNodes(10, 10)).toThrow(ProofError)
    expect(() => consistencyProofNodes(0, 4)).toThrow(ProofError)
    expect(() => rootNodes(-1)).toThrow(ProofError)
  })

  it('rejects naming the node a store really lacks, and serves the proofs that do not need it', async () => {
    // The tree of 10 leaves kept in a MemoryNodeStore without node (1, 0), the hash of leaves 0..1:
    // the inclusion proof of leaf 3 needs it, the one of leaf 9 does not.
    const { tree, store } = treeOf(10)
    const stored = new Map<string, Buffer>()
    for (let level = 0; level < 4; level++) {
      for (let index = 0; index < Math.floor(10 / 2 ** level); index++) {
        if (level !== 1 || index !== 0) stored.set(`${level}/${index}`, store.node(level, index))
      }
    }
    const reader = asyncNodeReader({
      node(level, index) {
        const hash = stored.get(`${level}/${index}`)
        if (hash === undefined) throw new RangeError(`no stored hash at level ${level}, index ${index}`)
        return hash
      },
    })
    expect(inclusionProofNodes(3, 10)).toContainEqual({ level: 1, index: 0 })
    const proofs = new TreeProofs(reader)
    await expect(proofs.inclusion(3, 10)).rejects.toThrow(/no stored hash at level 1, index 0/)
    expect((await proofs.inclusion(9, 10)).proof).toEqual(tree.inclusionProof(9, 10))
  })

  it('forget drops what a caching reader kept, so a proof reads every hash again', async () => {
    const { store } = treeOf(10)
    const kept = new Map<string, Buffer>()
    let forgotten = 0
    const reader: AsyncNodeReader = {
      async readNodes(keys) {
        return keys.map((k) => {
          const key = `${k.level}/${k.index}`
          const hash = kept.get(key) ?? store.node(k.level, k.index)
          kept.set(key, hash)
          return hash
        })
      },
      forget() {
        forgotten++
        kept.clear()
      },
    }
    const proofs = new TreeProofs(reader)
    await proofs.inclusion(3, 10)
    expect(kept.size).toBeGreaterThan(0)
    proofs.forget()
    expect(forgotten).toBe(1)
    expect(kept.size).toBe(0)
    // A reader without forget: a no-op.
    expect(() => new TreeProofs(asyncNodeReader(store)).forget()).not.toThrow()
  })
})
