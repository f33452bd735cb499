import { hash } from 'node:crypto'

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32

const LEAF_PREFIX = 0x00
const NODE_PREFIX = 0x01
const EMPTY = Buffer.alloc(0)

/**
 * RFC 6962 §2.1 leaf hash: SHA-256(0x00 ‖ entry). The domain-separation byte keeps a leaf from ever
 * hashing like an interior node.
 *
 * @example
 * const leaf = leafHash(Buffer.from('{"seq":1,...}'))
 */
export function leafHash(entry: Uint8Array): Buffer {
  // One-shot `crypto.hash` over one buffer is cheaper per record than a `createHash` object (the
  // tree hashes every appended line; see docs/benchmarks.md, 2026-11-30 tree append cost).
  const input = Buffer.allocUnsafe(entry.byteLength + 1)
  input[0] = LEAF_PREFIX
  input.set(entry, 1)
  return hash('sha256', input, 'buffer')
}

/**
 * RFC 6962 §2.1 interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @example
 * const parent = nodeHash(leafHash(a), leafHash(b))
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + left.byteLength + right.byteLength)
  input[0] = NODE_PREFIX
  input.set(left, 1)
  input.set(right, 1 + left.byteLength)
  return hash('sha256', input, 'buffer')
}

/**
 * The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
 *
 * @example
 * if (size === 0) return emptyRoot()
 */
export function emptyRoot(): Buffer {
  return hash('sha256', EMPTY, 'buffer')
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
