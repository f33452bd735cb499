import { emptyRoot, HASH_SIZE } from './hash.js'
import { consistencyProof, inclusionProof, type NodeReader, ProofError, rangeHash } from './proof.js'

/**
 * One stored complete subtree: `level` (0 = a leaf hash) and `index` (the subtree covers leaves
 * `[index·2^level, (index+1)·2^level)`).
 *
 * @example
 * const key: NodeKey = { level: 3, index: 0 } // the hash of leaves 0..7
 */
export interface NodeKey {
  readonly level: number
  readonly index: number
}

/**
 * Asynchronous read access to stored complete-subtree hashes (for example a database table): one call
 * reads many nodes, so a proof costs one round trip. The hashes come back in the order of `keys`; a
 * node that is not stored rejects the promise.
 *
 * @example
 * const reader: AsyncNodeReader = { readNodes: async (keys) => keys.map((k) => store.node(k.level, k.index)) }
 */
export interface AsyncNodeReader {
  readNodes(keys: readonly NodeKey[]): Promise<Buffer[]>
  /** Drops hashes kept from earlier reads (a reader that caches; called after a proof failed a check). */
  forget?(): void
}

/**
 * The nodes `run` reads from a `NodeReader`, each once, in first-read order. Every proof function reads
 * only stored complete subtrees and which ones depends only on the sizes and indices, so running it
 * once over placeholder hashes lists exactly what the real run will need.
 */
function nodesRead(run: (reader: NodeReader) => unknown): NodeKey[] {
  const keys = new Map<string, NodeKey>()
  const placeholder = Buffer.alloc(HASH_SIZE)
  run({
    node(level, index) {
      keys.set(`${level}/${index}`, { level, index })
      return placeholder
    },
  })
  return [...keys.values()]
}

/**
 * The complete subtrees the RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves is
 * built from (O(log size) of them). Throws `ProofError` for an index or size out of range.
 *
 * @example
 * const hashes = await reader.readNodes(inclusionProofNodes(41, 1000))
 */
export function inclusionProofNodes(index: number, size: number): NodeKey[] {
  return nodesRead((reader) => inclusionProof(reader, index, size))
}

/**
 * The complete subtrees the RFC 9162 consistency proof from `size1` to `size2` leaves is built from.
 * Throws `ProofError` like `consistencyProof`.
 *
 * @example
 * const hashes = await reader.readNodes(consistencyProofNodes(700, 1000))
 */
export function consistencyProofNodes(size1: number, size2: number): NodeKey[] {
  return nodesRead((reader) => consistencyProof(reader, size1, size2))
}

/**
 * The complete subtrees the root of the tree of `size` leaves is computed from: its compact range,
 * largest first (none for the empty tree).
 *
 * @example
 * const edge = rootNodes(10) // [{ level: 3, index: 0 }, { level: 1, index: 4 }]
 */
export function rootNodes(size: number): NodeKey[] {
  if (!Number.isSafeInteger(size) || size < 0) throw new ProofError('bad_request', `bad tree size ${size}`)
  return size === 0 ? [] : nodesRead((reader) => rangeHash(reader, 0, size))
}

/**
 * Proofs and roots over stored complete subtrees read asynchronously (`AsyncNodeReader`): each call
 * lists the nodes it needs (`inclusionProofNodes`, …), reads them in one `readNodes` call, then runs the
 * same synchronous proof code as `MerkleTree`, so the proofs are byte-identical to it.
 *
 * @example
 * const proofs = new TreeProofs(tableReader)
 * const { leafHash, root, proof } = await proofs.inclusion(41, 1000)
 */
export class TreeProofs {
  readonly #reader: AsyncNodeReader

  constructor(reader: AsyncNodeReader) {
    this.#reader = reader
  }

  /**
   * Drops whatever the reader kept from earlier reads (`AsyncNodeReader.forget`), so the next proof
   * reads every hash again: call it when a proof did not verify against a signed root.
   */
  forget(): void {
    this.#reader.forget?.()
  }

  /** Reads `keys` in one call and runs `compute` over them. */
  async #over<T>(keys: readonly NodeKey[], compute: (reader: NodeReader) => T): Promise<T> {
    const unique = [...new Map(keys.map((k) => [`${k.level}/${k.index}`, k])).values()]
    const hashes = unique.length === 0 ? [] : await this.#reader.readNodes(unique)
    const read = new Map<string, Buffer>()
    for (const [i, key] of unique.entries()) read.set(`${key.level}/${key.index}`, hashes[i]!)
    return compute({
      node(level, index) {
        const hash = read.get(`${level}/${index}`)
        if (hash === undefined) throw new RangeError(`no stored hash at level ${level}, index ${index}`)
        return hash
      },
    })
  }

  /** The root of the tree of `size` leaves (the empty-tree hash for 0). */
  root(size: number): Promise<Buffer> {
    if (size === 0) {
      rootNodes(size)
      return Promise.resolve(emptyRoot())
    }
    return this.#over(rootNodes(size), (reader) => rangeHash(reader, 0, size))
  }

  /** The stored hash of leaf `index`. */
  async leafHash(index: number): Promise<Buffer> {
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new ProofError('bad_request', `bad leaf index ${index}`)
    }
    const [hash] = await this.#reader.readNodes([{ level: 0, index }])
    return hash!
  }

  /** Inclusion proof of leaf `index` in the tree of `size` leaves, with the leaf hash and that root. */
  inclusion(index: number, size: number): Promise<{ leafHash: Buffer; root: Buffer; proof: Buffer[] }> {
    const keys = [{ level: 0, index }, ...rootNodes(size), ...inclusionProofNodes(index, size)]
    return this.#over(keys, (reader) => ({
      leafHash: reader.node(0, index),
      root: rangeHash(reader, 0, size),
      proof: inclusionProof(reader, index, size),
    }))
  }

  /** Inclusion proofs of several leaves in the tree of `size` leaves (one read), in the order of `indices`. */
  inclusionProofs(indices: readonly number[], size: number): Promise<Buffer[][]> {
    const keys = indices.flatMap((index) => inclusionProofNodes(index, size))
    return this.#over(keys, (reader) => indices.map((index) => inclusionProof(reader, index, size)))
  }

  /** Consistency proof from `size1` to `size2` leaves, with both roots. */
  consistency(size1: number, size2: number): Promise<{ root1: Buffer; root2: Buffer; proof: Buffer[] }> {
    const keys = [...consistencyProofNodes(size1, size2), ...rootNodes(size1), ...rootNodes(size2)]
    return this.#over(keys, (reader) => ({
      root1: rangeHash(reader, 0, size1),
      root2: rangeHash(reader, 0, size2),
      proof: consistencyProof(reader, size1, size2),
    }))
  }
}

/**
 * An `AsyncNodeReader` over a synchronous `NodeReader` (a `MemoryNodeStore`, a `FileNodeStore`), so one
 * asynchronous proof path serves every store.
 *
 * @example
 * const proofs = new TreeProofs(asyncNodeReader(FileNodeStore.open(dir)))
 */
export function asyncNodeReader(reader: NodeReader): AsyncNodeReader {
  return {
    readNodes: async (keys) => keys.map((key) => reader.node(key.level, key.index)),
  }
}
