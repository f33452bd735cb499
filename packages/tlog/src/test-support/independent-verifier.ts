// An independent verifier written straight from RFC 6962 §2.1, RFC 9162 §2.1.3.2/§2.1.4.2, C2SP
// signed-note and C2SP tlog-checkpoint. It deliberately imports nothing from the package: tests use it
// to check what the implementation produces, so a bug shared by both is unlikely.
import { createHash, createPublicKey, verify } from 'node:crypto'

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256')
  for (const part of parts) h.update(part)
  return h.digest()
}
const H_LEAF = (d: Uint8Array): Buffer => sha(Uint8Array.of(0), d)
const H_NODE = (l: Uint8Array, r: Uint8Array): Buffer => sha(Uint8Array.of(1), l, r)

/** MTH(D[n]) by the recursive definition of RFC 6962 §2.1. */
export function referenceRoot(entries: readonly Uint8Array[]): Buffer {
  if (entries.length === 0) return sha()
  if (entries.length === 1) return H_LEAF(entries[0]!)
  let k = 1
  while (k << 1 < entries.length) k <<= 1
  return H_NODE(referenceRoot(entries.slice(0, k)), referenceRoot(entries.slice(k)))
}

/** PATH(m, D[n]) by the recursive definition of RFC 6962 §2.1.1. */
export function referencePath(m: number, entries: readonly Uint8Array[]): Buffer[] {
  const n = entries.length
  if (n === 1) return []
  let k = 1
  while (k << 1 < n) k <<= 1
  if (m < k) return [...referencePath(m, entries.slice(0, k)), referenceRoot(entries.slice(k))]
  return [...referencePath(m - k, entries.slice(k)), referenceRoot(entries.slice(0, k))]
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 6962 §2.1.2. */
export function referenceConsistency(m: number, entries: readonly Uint8Array[]): Buffer[] {
  const sub = (m: number, d: readonly Uint8Array[], b: boolean): Buffer[] => {
    const n = d.length
    if (m === n) return b ? [] : [referenceRoot(d)]
    let k = 1
    while (k << 1 < n) k <<= 1
    if (m <= k) return [...sub(m, d.slice(0, k), b), referenceRoot(d.slice(k))]
    return [...sub(m - k, d.slice(k), false), referenceRoot(d.slice(0, k))]
  }
  return m === 0 || m === entries.length ? [] : sub(m, entries, true)
}

/** RFC 9162 §2.1.3.2, with BigInt bit operations. */
export function independentVerifyInclusion(
  leafIndex: number,
  treeSize: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (leafIndex >= treeSize || leaf.length !== 32 || path.some((p) => p.length !== 32)) return false
  let fn = BigInt(leafIndex)
  let sn = BigInt(treeSize - 1)
  let r: Buffer = Buffer.from(leaf)
  for (const p of path) {
    if (sn === 0n) return false
    if ((fn & 1n) === 1n || fn === sn) {
      r = H_NODE(p, r)
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n
        sn >>= 1n
      }
    } else {
      r = H_NODE(r, p)
    }
    fn >>= 1n
    sn >>= 1n
  }
  return sn === 0n && r.equals(root)
}

/** RFC 9162 §2.1.4.2, with BigInt bit operations (sizes equal or first = 0 handled as in the RFC text). */
export function independentVerifyConsistency(
  first: number,
  second: number,
  path: readonly Uint8Array[],
  firstHash: Uint8Array,
  secondHash: Uint8Array,
): boolean {
  if (first > second || path.some((p) => p.length !== 32)) return false
  if (first === second) return path.length === 0 && Buffer.from(firstHash).equals(secondHash)
  if (first === 0) return path.length === 0
  if (path.length === 0) return false
  const c = (first & (first - 1)) === 0 ? [firstHash, ...path] : [...path]
  let fn = BigInt(first - 1)
  let sn = BigInt(second - 1)
  while ((fn & 1n) === 1n) {
    fn >>= 1n
    sn >>= 1n
  }
  let fr: Buffer = Buffer.from(c[0]!)
  let sr: Buffer = Buffer.from(c[0]!)
  for (const x of c.slice(1)) {
    if (sn === 0n) return false
    if ((fn & 1n) === 1n || fn === sn) {
      fr = H_NODE(x, fr)
      sr = H_NODE(x, sr)
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n
        sn >>= 1n
      }
    } else {
      sr = H_NODE(sr, x)
    }
    fn >>= 1n
    sn >>= 1n
  }
  return sn === 0n && fr.equals(firstHash) && sr.equals(secondHash)
}

export interface IndependentCheckpoint {
  origin: string
  size: number
  root: Buffer
}

/**
 * C2SP signed-note + tlog-checkpoint: returns the checkpoint when the note carries a valid Ed25519
 * signature by the verifier key `vkey` (`name+hexid+base64(0x01‖pub)`), or undefined.
 */
export function independentOpenCheckpoint(note: string, vkey: string): IndependentCheckpoint | undefined {
  const [name, idHex, ...keyParts] = vkey.split('+')
  const keyBytes = Buffer.from(keyParts.join('+'), 'base64')
  if (keyBytes[0] !== 0x01 || keyBytes.length !== 33) return undefined
  const pub = keyBytes.subarray(1)
  const expectedId = sha(Buffer.from(`${name}\n`), Uint8Array.of(1), pub).subarray(0, 4)
  if (expectedId.toString('hex') !== idHex) return undefined
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url') },
    format: 'jwk',
  })
  const cut = note.lastIndexOf('\n\n')
  if (cut < 0) return undefined
  const text = note.slice(0, cut + 1)
  let ok = false
  for (const line of note.slice(cut + 2).split('\n')) {
    if (line === '') continue
    const [dash, signer, sigB64] = line.split(' ')
    if (dash !== '\u2014' || signer !== name || sigB64 === undefined) continue
    const sig = Buffer.from(sigB64, 'base64')
    if (!sig.subarray(0, 4).equals(expectedId)) continue
    if (!verify(null, Buffer.from(text), key, sig.subarray(4))) return undefined
    ok = true
  }
  if (!ok) return undefined
  const [origin, size, root] = text.split('\n')
  if (!/^(0|[1-9]\d*)$/.test(size ?? '')) return undefined
  return { origin: origin!, size: Number(size), root: Buffer.from(root!, 'base64') }
}

/** The leaf hash, for tests that need one without the package. */
export const independentLeafHash = H_LEAF
