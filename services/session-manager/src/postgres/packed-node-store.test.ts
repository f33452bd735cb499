import { MemoryNodeStore, MerkleTree } from '@care/tlog'
import { describe, expect, it } from 'vitest'
import { PackedNodeStore } from './packed-node-store.js'

function leaf(i: number): Buffer {
  return Buffer.from(`{"seq":${i + 1}}`)
}

describe('PackedNodeStore', () => {
  it('gives the same roots and proofs as MemoryNodeStore, across buffer growth and truncation', () => {
    const packed = new MerkleTree(new PackedNodeStore())
    const plain = new MerkleTree(new MemoryNodeStore())
    for (let i = 0; i < 3000; i++) {
      packed.append(leaf(i))
      plain.append(leaf(i))
    }
    for (const size of [1, 2, 3, 1024, 1025, 2047, 3000]) {
      expect(packed.root(size)).toEqual(plain.root(size))
      expect(packed.inclusionProof(size - 1, size)).toEqual(plain.inclusionProof(size - 1, size))
      expect(packed.consistencyProof(Math.ceil(size / 3), size)).toEqual(
        plain.consistencyProof(Math.ceil(size / 3), size),
      )
    }
    packed.truncate(1500)
    plain.truncate(1500)
    for (let i = 1500; i < 1600; i++) {
      packed.append(leaf(i + 7))
      plain.append(leaf(i + 7))
    }
    expect(packed.size).toBe(1600)
    expect(packed.root()).toEqual(plain.root())
    expect(packed.inclusionProof(1550, 1600)).toEqual(plain.inclusionProof(1550, 1600))
    expect(() => new PackedNodeStore().node(0, 0)).toThrow(RangeError)
  })
})
