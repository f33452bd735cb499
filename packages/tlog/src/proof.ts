import { HASH_SIZE, nodeHash, sameHash, splitPoint } from './hash.js'

/**
 * Read access to the hashes of complete subtrees: `node(level, index)` is the Merkle Tree Hash of leaves
 * `[index·2^level, (index+1)·2^level)`. Proof generation asks only for subtrees that are complete in
 * the tree it proves against.
 *
 * @example
 * const reader: NodeReader = { node: (level, index) => levels[level]![index]! }
 */
export interface NodeReader {
  node(level: number, index: number): Buffer
}

/**
 * Why a proof did not verify (or could not be built): `code` says which check failed.
 *
 * @example
 * try { verifyInclusion(...) } catch (err) { if (err instanceof ProofError) console.log(err.code) }
 */
export class ProofError extends Error {
  override name = 'ProofError'
  readonly code: 'bad_request' | 'bad_proof' | 'root_mismatch'
  constructor(code: ProofError['code'], message: string) {
    super(message)
    this.code = code
  }
}

/**
 * MTH(D[lo:hi]) for a range the RFC's recursion produces: either a complete aligned subtree, or the
 * right edge of the tree, which splits into complete subtrees by the binary digits of its width.
 */
export function rangeHash(reader: NodeReader, lo: number, hi: number): Buffer {
  const parts: Buffer[] = []
  let at = lo
  while (at < hi) {
    let width = 1
    while (width * 2 <= hi - at) width *= 2
    const level = Math.log2(width)
    if (at % width !== 0) throw new ProofError('bad_request', `range [${lo}, ${hi}) is not a subtree range`)
    parts.push(reader.node(level, at / width))
    at += width
  }
  let hash = parts.at(-1)
  if (hash === undefined) throw new ProofError('bad_request', 'empty range')
  for (let i = parts.length - 2; i >= 0; i--) hash = nodeHash(parts[i]!, hash)
  return hash
}

/**
 * The RFC 6962 §2.1.1 audit path (RFC 9162 §2.1.3.1 inclusion proof) for leaf `index` in the tree of
 * `size` leaves, ordered from the leaf up.
 *
 * @example
 * const proof = inclusionProof(store, 41, checkpoint.size)
 */
export function inclusionProof(reader: NodeReader, index: number, size: number): Buffer[] {
  checkSize(size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new ProofError('bad_request', `leaf index ${index} is not in a tree of size ${size}`)
  }
  const path: Buffer[] = []
  // PATH(m, D[lo:hi]) unrolled from the root down; siblings are collected root-first, then reversed.
  let lo = 0
  let hi = size
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (index - lo < k) {
      path.push(rangeHash(reader, lo + k, hi))
      hi = lo + k
    } else {
      path.push(rangeHash(reader, lo, lo + k))
      lo += k
    }
  }
  return path.reverse()
}

/**
 * The RFC 6962 §2.1.2 consistency proof (RFC 9162 §2.1.4.1) that the tree of `size2` leaves extends
 * the tree of `size1` leaves (0 < size1 ≤ size2). Empty when the sizes are equal.
 *
 * @example
 * const proof = consistencyProof(store, previous.size, current.size)
 */
export function consistencyProof(reader: NodeReader, size1: number, size2: number): Buffer[] {
  checkSize(size1)
  checkSize(size2)
  if (size1 > size2) throw new ProofError('bad_request', `size ${size1} is larger than size ${size2}`)
  if (size1 === 0)
    throw new ProofError('bad_request', 'a consistency proof from the empty tree is meaningless')
  if (size1 === size2) return []
  // SUBPROOF(m, D[lo:hi], b), unrolled; like the audit path, collected root-first.
  const proof: Buffer[] = []
  let m = size1
  let lo = 0
  let hi = size2
  let complete = true
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo)
    if (m <= k) {
      proof.push(rangeHash(reader, lo + k, hi))
      hi = lo + k
    } else {
      proof.push(rangeHash(reader, lo, lo + k))
      lo += k
      m -= k
      complete = false
    }
  }
  if (!complete) proof.push(rangeHash(reader, lo, hi))
  return proof.reverse()
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5, without the final comparison);
 * throws `ProofError` when the proof has the wrong length for `index` and `size`.
 *
 * @example
 * const root = rootFromInclusionProof(7, 100, leafHash(entry), proof)
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer {
  checkSize(size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new ProofError('bad_request', `leaf index ${index} is not in a tree of size ${size}`)
  }
  checkHashes([leaf, ...proof])
  let fn = index
  let sn = size - 1
  let r: Buffer = Buffer.from(leaf)
  for (const p of proof) {
    if (sn === 0) throw new ProofError('bad_proof', 'inclusion proof is too long')
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new ProofError('bad_proof', 'inclusion proof is too short')
  return r
}

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2): leaf `index` with hash `leaf` is in the tree of
 * `size` leaves whose root is `root`. Throws `ProofError` otherwise.
 *
 * @example
 * verifyInclusion(seq - 1, checkpoint.size, leafHash(line), proof, checkpoint.rootHash)
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  const computed = rootFromInclusionProof(index, size, leaf, proof)
  if (!sameHash(computed, root))
    throw new ProofError('root_mismatch', 'inclusion proof leads to another root')
}

/**
 * Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `size2` leaves with root `root2` is an
 * append-only extension of the tree of `size1` leaves with root `root1` (size1 > 0: a proof from the empty
 * tree proves nothing and is refused, as transparency-dev/merkle does). Throws `ProofError` otherwise.
 *
 * @example
 * verifyConsistency(older.size, newer.size, proof, older.rootHash, newer.rootHash)
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkSize(size1)
  checkSize(size2)
  checkHashes(proof)
  if (size2 < size1) throw new ProofError('bad_request', `size ${size2} is smaller than size ${size1}`)
  if (size1 === 0)
    throw new ProofError('bad_request', 'a consistency proof from the empty tree is meaningless')
  if (size1 === size2) {
    if (proof.length > 0) throw new ProofError('bad_proof', 'proof between equal sizes must be empty')
    if (!sameHash(root1, root2)) throw new ProofError('root_mismatch', 'equal sizes with different roots')
    return
  }
  if (proof.length === 0) throw new ProofError('bad_proof', 'consistency proof is empty')
  checkHashes([root1, root2])
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof]
  let fn = size1 - 1
  let sn = size2 - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr: Buffer = Buffer.from(path[0]!)
  let sr: Buffer = Buffer.from(path[0]!)
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError('bad_proof', 'consistency proof is too long')
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new ProofError('bad_proof', 'consistency proof is too short')
  if (!sameHash(fr, root1))
    throw new ProofError('root_mismatch', 'consistency proof does not lead to the first root')
  if (!sameHash(sr, root2))
    throw new ProofError('root_mismatch', 'consistency proof does not lead to the second root')
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.floor(Math.log2(n)) === n
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new ProofError('bad_request', `bad tree size ${size}`)
}

function checkHashes(hashes: readonly Uint8Array[]): void {
  for (const hash of hashes) {
    if (hash.length !== HASH_SIZE)
      throw new ProofError('bad_proof', `a hash is ${hash.length} bytes, not ${HASH_SIZE}`)
  }
}
