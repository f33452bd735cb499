import { emptyRoot, leafHash, nodeHash } from './hash.js'

/**
 * Called for every complete subtree an append finishes: `level` 0 is the leaf itself, level `l` the
 * hash of leaves `[index·2^l, (index+1)·2^l)`.
 */
export type NodeSink = (level: number, index: number, hash: Buffer) => void

/**
 * The compact range `[0, size)` of an RFC 6962 Merkle tree: the roots of the perfect subtrees the
 * binary representation of `size` splits the leaves into, largest first. It holds at most log₂(size)+1
 * hashes, so appending a leaf and computing the tree hash need no storage; a `NodeSink` receives every
 * completed subtree for whoever wants to serve proofs later.
 *
 * @example
 * const range = new CompactRange()
 * range.appendEntry(Buffer.from('first record'))
 * console.log(range.size, range.root().toString('base64'))
 */
export class CompactRange {
  #size: number
  #hashes: Buffer[]

  /** An empty range, or the state saved from `hashes`/`size` of another range (checked for shape). */
  constructor(size = 0, hashes: readonly Buffer[] = []) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a non-negative integer')
    if (hashes.length !== popCount(size)) {
      throw new RangeError(
        `a compact range of size ${size} holds ${popCount(size)} hashes, got ${hashes.length}`,
      )
    }
    this.#size = size
    this.#hashes = [...hashes]
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size
  }

  /** The subtree roots, largest (leftmost) first. */
  get hashes(): readonly Buffer[] {
    return this.#hashes
  }

  /** Appends the leaf for `entry` (hashed with `leafHash`). */
  appendEntry(entry: Uint8Array, sink?: NodeSink): void {
    this.appendLeafHash(leafHash(entry), sink)
  }

  /** Appends an already hashed leaf, merging completed subtrees (each reported to `sink`). */
  appendLeafHash(hash: Buffer, sink?: NodeSink): void {
    const index = this.#size
    let node = hash
    sink?.(0, index, node)
    let level = 0
    while (bitAt(index, level)) {
      node = nodeHash(this.#hashes.pop()!, node)
      level++
      sink?.(level, Math.floor(index / 2 ** level), node)
    }
    this.#hashes.push(node)
    this.#size = index + 1
  }

  /** The Merkle Tree Hash of the leaves so far (the empty-tree hash for size 0). */
  root(): Buffer {
    if (this.#hashes.length === 0) return emptyRoot()
    let root = this.#hashes.at(-1)!
    for (let i = this.#hashes.length - 2; i >= 0; i--) root = nodeHash(this.#hashes[i]!, root)
    return root
  }

  /** An independent copy. */
  clone(): CompactRange {
    return new CompactRange(this.#size, this.#hashes)
  }
}

function bitAt(n: number, level: number): boolean {
  return Math.floor(n / 2 ** level) % 2 === 1
}

function popCount(n: number): number {
  let count = 0
  for (let rest = n; rest > 0; rest = Math.floor(rest / 2)) count += rest % 2
  return count
}
