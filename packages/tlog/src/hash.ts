import { createHash } from 'node:crypto'

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32

const LEAF_PREFIX = Buffer.from([0x00])
const NODE_PREFIX = Buffer.from([0x01])

/**
 * RFC 6962 §2.1 leaf hash: SHA-256(0x00 ‖ entry). The domain-separation byte keeps a leaf from ever
 * hashing like an interior node.
 *
 * @example
 * const leaf = leafHash(Buffer.from('{"seq":1,...}'))
 */
export function leafHash(entry: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest()
}

/**
 * RFC 6962 §2.1 interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @example
 * const parent = nodeHash(leafHash(a), leafHash(b))
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest()
}

/**
 * The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
 *
 * @example
 * if (size === 0) return emptyRoot()
 */
export function emptyRoot(): Buffer {
  return createHash('sha256').digest()
}

/** Largest power of two strictly less than `n` (n ≥ 2): the RFC's split point `k`. */
export function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** True when `a` and `b` hold the same bytes (a plain comparison; nothing here is secret). */
export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}
