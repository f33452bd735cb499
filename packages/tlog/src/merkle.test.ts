import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { CompactRange } from './compact-range.js'
import { emptyRoot, leafHash, nodeHash } from './hash.js'
import { MerkleTree } from './merkle-tree.js'
import { FileNodeStore, levelFileName, MemoryNodeStore } from './node-store.js'
import { ProofError, verifyConsistency, verifyInclusion } from './proof.js'
import {
  independentVerifyConsistency,
  independentVerifyInclusion,
  referenceConsistency,
  referencePath,
  referenceRoot,
} from './test-support/independent-verifier.js'
import probes from './test-vectors/transparency-dev-merkle-probes.json' with { type: 'json' }

const hex = (s: string) => Buffer.from(s, 'hex')
const b64 = (s: string) => Buffer.from(s, 'base64')

// The RFC 6962 reference tree (google/certificate-transparency merkle_tree_test.cc, also used by
// transparency-dev/merkle cmd/proofgen): leaves, the roots at sizes 1..8, audit paths and consistency
// proofs (leaf indexes 1-based, as in those tests).
const RFC_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(hex)
const RFC_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex)
const RFC_INCLUSION: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    2,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
]
const RFC_CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
]

function treeOf(entries: readonly Uint8Array[]): MerkleTree {
  const tree = new MerkleTree(new MemoryNodeStore())
  for (const entry of entries) tree.append(entry)
  return tree
}

const entriesOf = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`record ${i}`))

describe('RFC 6962 hashing', () => {
  it('hashes the empty tree, leaves and nodes as the RFC 6962 reference hasher does', () => {
    expect(emptyRoot().toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    )
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    )
    expect(leafHash(Buffer.from('L123456')).toString('hex')).toBe(
      '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
    )
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex')).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    )
  })

  it('computes the reference tree roots at every size from 1 to 8, incrementally and after the fact', () => {
    const tree = new MerkleTree(new MemoryNodeStore())
    for (const [i, leaf] of RFC_LEAVES.entries()) {
      tree.append(leaf)
      expect(tree.root().toString('hex')).toBe(RFC_ROOTS[i]!.toString('hex'))
    }
    for (let size = 1; size <= 8; size++) expect(tree.root(size).equals(RFC_ROOTS[size - 1]!)).toBe(true)
    expect(tree.root(0).equals(emptyRoot())).toBe(true)
  })

  it('produces and verifies the reference audit paths', () => {
    const tree = treeOf(RFC_LEAVES)
    for (const [leaf, size, expected] of RFC_INCLUSION) {
      const proof = tree.inclusionProof(leaf - 1, size)
      expect(proof.map((p) => p.toString('hex'))).toEqual(expected)
      verifyInclusion(leaf - 1, size, leafHash(RFC_LEAVES[leaf - 1]!), proof, RFC_ROOTS[size - 1]!)
    }
  })

  it('produces and verifies the reference consistency proofs', () => {
    const tree = treeOf(RFC_LEAVES)
    for (const [size1, size2, expected] of RFC_CONSISTENCY) {
      const proof = tree.consistencyProof(size1, size2)
      expect(proof.map((p) => p.toString('hex'))).toEqual(expected)
      verifyConsistency(size1, size2, proof, RFC_ROOTS[size1 - 1]!, RFC_ROOTS[size2 - 1]!)
    }
  })
})

describe('transparency-dev/merkle verification probes', () => {
  it.each(probes.inclusion.map((p) => [p.file, p] as const))('inclusion %s', (_file, probe) => {
    const run = () =>
      verifyInclusion(
        probe.leafIdx,
        probe.treeSize,
        b64(probe.leafHash ?? ''),
        (probe.proof ?? []).map(b64),
        b64(probe.root ?? ''),
      )
    if (probe.wantErr) expect(run).toThrow(ProofError)
    else expect(run).not.toThrow()
  })

  it.each(probes.consistency.map((p) => [p.file, p] as const))('consistency %s', (_file, probe) => {
    const run = () =>
      verifyConsistency(
        probe.size1,
        probe.size2,
        (probe.proof ?? []).map(b64),
        b64(probe.root1 ?? ''),
        b64(probe.root2 ?? ''),
      )
    if (probe.wantErr) expect(run).toThrow(ProofError)
    else expect(run).not.toThrow()
  })
})

describe('proofs for arbitrary trees (property-based, checked by the independent verifier)', () => {
  const sizeAndIndex = fc
    .integer({ min: 1, max: 300 })
    .chain((size) =>
      fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: size, max: 300 })),
    )

  it('every inclusion proof equals the RFC 6962 PATH and verifies; a mutated one fails', () => {
    const entries = entriesOf(300)
    const tree = treeOf(entries)
    fc.assert(
      fc.property(sizeAndIndex, fc.nat(), fc.nat(255), ([size, index], which, bit) => {
        const proof = tree.inclusionProof(index, size)
        const root = tree.root(size)
        expect(root.equals(referenceRoot(entries.slice(0, size)))).toBe(true)
        expect(proof).toEqual(referencePath(index, entries.slice(0, size)))
        const leaf = leafHash(entries[index]!)
        verifyInclusion(index, size, leaf, proof, root)
        expect(independentVerifyInclusion(index, size, leaf, proof, root)).toBe(true)
        if (proof.length > 0) {
          const forged = proof.map((p) => Buffer.from(p))
          forged[which % forged.length]![bit % 32]! ^= 1 << (bit % 8)
          expect(() => verifyInclusion(index, size, leaf, forged, root)).toThrow(ProofError)
          expect(independentVerifyInclusion(index, size, leaf, forged, root)).toBe(false)
          expect(() => verifyInclusion(index, size, leaf, proof.slice(1), root)).toThrow(ProofError)
        }
        const otherLeaf = leafHash(Buffer.from('not in the log'))
        expect(() => verifyInclusion(index, size, otherLeaf, proof, root)).toThrow(ProofError)
        if (size > 1)
          expect(() => verifyInclusion((index + 1) % size, size, leaf, proof, root)).toThrow(ProofError)
      }),
      { numRuns: 300 },
    )
  })

  it('every consistency proof equals the RFC 6962 PROOF and verifies; a mutated one fails', () => {
    const entries = entriesOf(300)
    const tree = treeOf(entries)
    fc.assert(
      fc.property(sizeAndIndex, fc.nat(), fc.nat(255), ([size1, , size2], which, bit) => {
        const proof = tree.consistencyProof(size1, size2)
        expect(proof).toEqual(referenceConsistency(size1, entries.slice(0, size2)))
        const root1 = tree.root(size1)
        const root2 = tree.root(size2)
        verifyConsistency(size1, size2, proof, root1, root2)
        expect(independentVerifyConsistency(size1, size2, proof, root1, root2)).toBe(true)
        if (proof.length > 0) {
          const forged = proof.map((p) => Buffer.from(p))
          forged[which % forged.length]![bit % 32]! ^= 1 << (bit % 8)
          expect(() => verifyConsistency(size1, size2, forged, root1, root2)).toThrow(ProofError)
          expect(independentVerifyConsistency(size1, size2, forged, root1, root2)).toBe(false)
        }
        if (size1 < size2) {
          const wrongRoot2 = leafHash(Buffer.from('a rewritten history'))
          expect(() => verifyConsistency(size1, size2, proof, root1, wrongRoot2)).toThrow(ProofError)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('a compact range restored from its hashes continues to the same roots', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 50 }), (cut, more) => {
        const entries = entriesOf(cut + more)
        const first = new CompactRange()
        for (const entry of entries.slice(0, cut)) first.appendEntry(entry)
        const resumed = new CompactRange(first.size, first.hashes)
        for (const entry of entries.slice(cut)) resumed.appendEntry(entry)
        expect(resumed.root().equals(referenceRoot(entries))).toBe(true)
        expect(resumed.hashes.length).toBeLessThanOrEqual(Math.ceil(Math.log2(entries.length + 1)))
      }),
    )
  })
})

describe('FileNodeStore (flat level files)', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlog-store-'))
    dirs.push(dir)
    return dir
  }

  it('serves the same roots and proofs after a close and reopen, and keeps appending where it stopped', () => {
    const dir = tempDir()
    const entries = entriesOf(1000)
    const store = FileNodeStore.open(dir)
    const first = new MerkleTree(store)
    for (const entry of entries.slice(0, 700)) first.append(entry)
    const proofBefore = first.inclusionProof(500, 700)
    store.close()
    const reopened = FileNodeStore.open(dir)
    const tree = new MerkleTree(reopened)
    expect(tree.size).toBe(700)
    expect(tree.root().equals(referenceRoot(entries.slice(0, 700)))).toBe(true)
    expect(tree.inclusionProof(500, 700)).toEqual(proofBefore)
    for (const entry of entries.slice(700)) tree.append(entry)
    expect(tree.root().equals(referenceRoot(entries))).toBe(true)
    expect(tree.consistencyProof(700)).toEqual(referenceConsistency(700, entries))
    reopened.close()
  })

  it('cuts ragged level files back to a consistent size on open, and proofs stay correct', () => {
    const dir = tempDir()
    const entries = entriesOf(600)
    const store = FileNodeStore.open(dir)
    const tree = new MerkleTree(store)
    for (const entry of entries) tree.append(entry)
    store.close()
    expect(statSync(join(dir, levelFileName(0))).size).toBe(600 * 32)
    // A crash mid-flush: level 0 has 5 more bytes than whole hashes, level 3 lost its last 2 hashes.
    writeFileSync(join(dir, levelFileName(0)), Buffer.alloc(5), { flag: 'a' })
    truncateSync(join(dir, levelFileName(3)), (Math.floor(600 / 8) - 2) * 32)
    const reopened = FileNodeStore.open(dir)
    const resumed = new MerkleTree(reopened)
    expect(resumed.size).toBe((Math.floor(600 / 8) - 2 + 1) * 8 - 1)
    expect(resumed.root().equals(referenceRoot(entries.slice(0, resumed.size)))).toBe(true)
    for (const entry of entries.slice(resumed.size)) resumed.append(entry)
    expect(resumed.root().equals(referenceRoot(entries))).toBe(true)
    const proof = resumed.inclusionProof(123, 600)
    expect(independentVerifyInclusion(123, 600, leafHash(entries[123]!), proof, resumed.root())).toBe(true)
    reopened.close()
  })

  it('forgets leaves beyond a truncation (a log cut back) and rebuilds from there', () => {
    const dir = tempDir()
    const entries = entriesOf(100)
    const store = FileNodeStore.open(dir)
    const tree = new MerkleTree(store)
    for (const entry of entries) tree.append(entry)
    tree.truncate(37)
    expect(tree.size).toBe(37)
    expect(tree.root().equals(referenceRoot(entries.slice(0, 37)))).toBe(true)
    const replacement = entriesOf(50).map((e) => Buffer.concat([e, Buffer.from('!')]))
    for (const entry of replacement.slice(37)) tree.append(entry)
    store.close()
    const again = new MerkleTree(FileNodeStore.open(dir))
    expect(again.size).toBe(50)
    expect(again.root().equals(referenceRoot([...entries.slice(0, 37), ...replacement.slice(37)]))).toBe(true)
    expect(readFileSync(join(dir, levelFileName(0))).length).toBe(50 * 32)
  })

  it('serves every hash like the memory store before and after flushes, past the 64 KiB write buffer', () => {
    const entries = entriesOf(5000)
    const memory = new MemoryNodeStore()
    const reference = new MerkleTree(memory)
    const store = FileNodeStore.open(tempDir())
    const tree = new MerkleTree(store)
    let pendingRead: Buffer | undefined
    for (const [i, entry] of entries.entries()) {
      reference.append(entry)
      tree.append(entry)
      if (i === 1500) pendingRead = store.node(0, 1500)
      if (i === 3333) store.flush()
    }
    // A hash read while pending is a copy: later flushes and appends do not change it.
    expect(pendingRead?.equals(leafHash(entries[1500]!))).toBe(true)
    for (let level = 0; 2 ** level <= entries.length; level++) {
      for (let index = 0; index < Math.floor(entries.length / 2 ** level); index++) {
        expect(store.node(level, index).equals(memory.node(level, index))).toBe(true)
      }
    }
    expect(() => store.node(0, entries.length)).toThrow(RangeError)
    expect(tree.root().equals(referenceRoot(entries))).toBe(true)
    store.close()
  })

  it('rejects proofs for sizes the tree does not have', () => {
    const tree = treeOf(entriesOf(10))
    expect(() => tree.inclusionProof(3, 11)).toThrow(ProofError)
    expect(() => tree.inclusionProof(10, 10)).toThrow(ProofError)
    expect(() => tree.consistencyProof(5, 11)).toThrow(ProofError)
    expect(() => tree.consistencyProof(6, 5)).toThrow(ProofError)
  })
})
