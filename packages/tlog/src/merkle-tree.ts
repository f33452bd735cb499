import { CompactRange } from './compact-range.js'
import { emptyRoot, leafHash } from './hash.js'
import type { NodeStore } from './node-store.js'
import { consistencyProof, inclusionProof, ProofError, rangeHash } from './proof.js'

/**
 * An append-only RFC 6962 Merkle tree: a `CompactRange` in memory for the current root (O(log n)
 * hashes) and a `NodeStore` holding every complete subtree, from which inclusion and consistency proofs
 * for any earlier size are built with O(log n) reads.
 *
 * @example
 * const tree = new MerkleTree(new MemoryNodeStore())
 * tree.append(Buffer.from('a'))
 * tree.append(Buffer.from('b'))
 * const proof = tree.inclusionProof(0, 2)
 */
export class MerkleTree {
  readonly #store: NodeStore
  #range: CompactRange
  readonly #sink: (level: number, index: number, hash: Buffer) => void

  /** A tree over the leaves `store` already holds (its compact range is read back from the store). */
  constructor(store: NodeStore) {
    this.#store = store
    this.#sink = (level, index, hash) => store.put(level, index, hash)
    this.#range = new CompactRange(store.leafCount, compactHashes(store, store.leafCount))
  }

  /** Number of leaves. */
  get size(): number {
    return this.#range.size
  }

  /** Appends the leaf for `entry` (SHA-256(0x00 ‖ entry)). */
  append(entry: Uint8Array): void {
    this.#range.appendLeafHash(leafHash(entry), this.#sink)
  }

  /** Appends an already computed leaf hash. */
  appendLeafHash(hash: Buffer): void {
    this.#range.appendLeafHash(hash, this.#sink)
  }

  /** The root at the current size, or at an earlier `size`. */
  root(size = this.size): Buffer {
    this.#checkSize(size)
    if (size === this.size) return this.#range.root()
    return size === 0 ? emptyRoot() : rangeHash(this.#store, 0, size)
  }

  /** The stored leaf hash of leaf `index`. */
  leafHash(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new ProofError('bad_request', `leaf index ${index} is not in a tree of size ${this.size}`)
    }
    return this.#store.node(0, index)
  }

  /** Inclusion proof of leaf `index` in the tree of `size` leaves (default: current size). */
  inclusionProof(index: number, size = this.size): Buffer[] {
    this.#checkSize(size)
    return inclusionProof(this.#store, index, size)
  }

  /** Consistency proof from the tree of `size1` leaves to the tree of `size2` leaves (default: current). */
  consistencyProof(size1: number, size2 = this.size): Buffer[] {
    this.#checkSize(size2)
    return consistencyProof(this.#store, size1, size2)
  }

  /** Forgets leaves beyond `size` (the log was cut back); the store is truncated too. */
  truncate(size: number): void {
    this.#checkSize(size)
    this.#store.truncate(size)
    this.#range = new CompactRange(size, compactHashes(this.#store, size))
  }

  /** The compact range at the current size (a copy). */
  compactRange(): CompactRange {
    return this.#range.clone()
  }

  #checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) {
      throw new ProofError('bad_request', `tree size ${size} is not between 0 and ${this.size}`)
    }
  }
}

/** The compact range of `[0, size)` read from stored complete subtrees, largest first. */
function compactHashes(store: NodeStore, size: number): Buffer[] {
  const hashes: Buffer[] = []
  let at = 0
  for (let level = 63; level >= 0; level--) {
    const width = 2 ** level
    if (at + width <= size) {
      hashes.push(store.node(level, at / width))
      at += width
    }
  }
  return hashes
}
