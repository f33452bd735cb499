import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'

/** C2SP signed-note signature type byte for Ed25519. */
export const ED25519_TYPE = 0x01
const MAX_SIGNATURES = 100
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Why a note or key was refused. `code`: `malformed_note`, `malformed_key`, `unverified_note` (no
 * signature by a known key), `invalid_signature` (a known key's signature does not verify),
 * `ambiguous_key` (two verifiers share name and key id).
 *
 * @example
 * try { openNote(text, verifiers) } catch (err) { if (err instanceof NoteError) console.log(err.code) }
 */
export class NoteError extends Error {
  override name = 'NoteError'
  readonly code:
    | 'malformed_note'
    | 'malformed_key'
    | 'unverified_note'
    | 'invalid_signature'
    | 'ambiguous_key'
  constructor(code: NoteError['code'], message: string) {
    super(message)
    this.code = code
  }
}

/**
 * One signature line of a note: key name, key id (uint32) and the base64 of id ‖ signature.
 *
 * @example
 * const { name, keyId } = note.signatures[0]!
 */
export interface NoteSignature {
  name: string
  keyId: number
  base64: string
}

/**
 * A key that checks signatures: name, key id and a `verify(text, signature)` over the raw signature
 * bytes (without the 4-byte key id).
 *
 * @example
 * const verifier = parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k')
 */
export interface NoteVerifier {
  name: string
  keyId: number
  verify(message: Uint8Array, signature: Uint8Array): boolean
}

/**
 * A key that signs notes.
 *
 * @example
 * const signer = parseSignerKey(readFileSync('log.skey', 'utf8').trim())
 */
export interface NoteSigner {
  name: string
  keyId: number
  sign(message: Uint8Array): Buffer
}

/**
 * A note whose signatures were checked: `text` (ending in a newline), the signatures that verified
 * under known keys, and those by unknown keys (ignored, as the spec requires).
 *
 * @example
 * const { text, verified } = openNote(bytes, [verifier])
 */
export interface OpenedNote {
  text: string
  verified: NoteSignature[]
  unverified: NoteSignature[]
}

/**
 * The C2SP signed-note key id: the first four bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ type ‖ key).
 *
 * @example
 * keyId('example.com/foo', ED25519_TYPE, publicKey) // 0x530d903a
 */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  return createHash('sha256')
    .update(name)
    .update(Buffer.from([0x0a, type]))
    .update(publicKey)
    .digest()
    .readUInt32BE(0)
}

/**
 * A new Ed25519 key pair in the text encodings of golang.org/x/mod/sumdb/note: the verifier key
 * `<name>+<hex id>+<base64(0x01 ‖ public key)>` and the signer key
 * `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
 *
 * @example
 * const { signerKey, verifierKey } = generateNoteKey('care.example/sessions')
 */
export function generateNoteKey(name: string): { signerKey: string; verifierKey: string } {
  checkKeyName(name)
  const { privateKey } = generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(ED25519_PKCS8_PREFIX.length)
  return signerKeyFromSeed(name, seed)
}

/**
 * Both key encodings for a 32-byte Ed25519 seed (deterministic; for tests and imports).
 *
 * @example
 * const { verifierKey } = signerKeyFromSeed('example.com/foo', seed)
 */
export function signerKeyFromSeed(
  name: string,
  seed: Uint8Array,
): { signerKey: string; verifierKey: string } {
  checkKeyName(name)
  if (seed.length !== 32) throw new NoteError('malformed_key', 'an Ed25519 seed is 32 bytes')
  const publicKey = publicKeyOf(privateKeyOf(seed))
  const id = hex8(keyId(name, ED25519_TYPE, publicKey))
  const typed = (key: Uint8Array) => Buffer.concat([Buffer.from([ED25519_TYPE]), key]).toString('base64')
  return {
    signerKey: `PRIVATE+KEY+${name}+${id}+${typed(seed)}`,
    verifierKey: `${name}+${id}+${typed(publicKey)}`,
  }
}

/**
 * Parses a verifier key (`<name>+<hex id>+<base64(0x01 ‖ 32-byte Ed25519 public key)>`), checking that
 * the id matches the key.
 *
 * @example
 * const verifier = parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const parts = splitKey(vkey, 3)
  if (parts === undefined) throw new NoteError('malformed_key', 'a verifier key is <name>+<id>+<key>')
  const [name, idHex, keyB64] = parts as [string, string, string]
  const { id, type, key } = parseKeyParts(name, idHex, keyB64)
  if (type !== ED25519_TYPE || key.length !== 32)
    throw new NoteError('malformed_key', 'not an Ed25519 verifier key')
  if (keyId(name, type, key) !== id) throw new NoteError('malformed_key', 'key id does not match the key')
  const publicKey = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, key]),
    format: 'der',
    type: 'spki',
  })
  return {
    name,
    keyId: id,
    verify: (message, signature) => signature.length === 64 && verify(null, message, publicKey, signature),
  }
}

/**
 * Parses a signer key (`PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ 32-byte seed)>`), checking that the
 * id matches the key derived from the seed.
 *
 * @example
 * const signer = parseSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz')
 */
export function parseSignerKey(skey: string): NoteSigner {
  const parts = splitKey(skey, 5)
  if (parts === undefined || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') {
    throw new NoteError('malformed_key', 'a signer key is PRIVATE+KEY+<name>+<id>+<key>')
  }
  const [, , name, idHex, keyB64] = parts as [string, string, string, string, string]
  const { id, type, key } = parseKeyParts(name, idHex, keyB64)
  if (type !== ED25519_TYPE || key.length !== 32)
    throw new NoteError('malformed_key', 'not an Ed25519 signer key')
  const privateKey = privateKeyOf(key)
  if (keyId(name, type, publicKeyOf(privateKey)) !== id) {
    throw new NoteError('malformed_key', 'key id does not match the key')
  }
  return { name, keyId: id, sign: (message) => sign(null, message, privateKey) }
}

/**
 * The verifier key (text form) belonging to a signer key.
 *
 * @example
 * const vkey = verifierKeyOf(readFileSync('log.skey', 'utf8').trim())
 */
export function verifierKeyOf(skey: string): string {
  parseSignerKey(skey)
  const parts = splitKey(skey, 5)!
  const seed = Buffer.from(parts[4]!, 'base64').subarray(1)
  return signerKeyFromSeed(parts[2]!, seed).verifierKey
}

/**
 * Signs `text` (which must end in a newline and hold no blank-line signature block of its own) and
 * returns the signed note: text, a blank line, one `— <name> <base64(id ‖ sig)>` line per signer.
 *
 * @example
 * const note = signNote('example.com/log\n5\nq8...=\n', [signer])
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkNoteText(text)
  const message = Buffer.from(text)
  let out = `${text}\n`
  for (const signer of signers) {
    checkKeyName(signer.name)
    const id = Buffer.alloc(4)
    id.writeUInt32BE(signer.keyId)
    out += `— ${signer.name} ${Buffer.concat([id, signer.sign(message)]).toString('base64')}\n`
  }
  return out
}

/**
 * Parses a signed note and checks it against `verifiers` (C2SP signed-note): signatures by unknown keys
 * (name and id not both known) are ignored; a known key's bad signature rejects the note
 * (`invalid_signature`); a note without any verified signature is rejected (`unverified_note`).
 * Several verifiers may be passed, so a log can rotate keys.
 *
 * @example
 * const { text } = openNote(readFileSync(path, 'utf8'), [currentKey, previousKey])
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const { text, signatures } = parseNote(note)
  const verified: NoteSignature[] = []
  const unverified: NoteSignature[] = []
  const seen = new Set<string>()
  const message = Buffer.from(text)
  for (const signature of signatures) {
    const tag = `${signature.name}+${hex8(signature.keyId)}`
    const matching = verifiers.filter((v) => v.name === signature.name && v.keyId === signature.keyId)
    if (matching.length > 1) throw new NoteError('ambiguous_key', `ambiguous key ${tag}`)
    const verifier = matching[0]
    if (verifier === undefined) {
      const key = `?${tag} ${signature.base64}`
      if (!seen.has(key)) unverified.push(signature)
      seen.add(key)
      continue
    }
    if (seen.has(tag)) continue
    const raw = Buffer.from(signature.base64, 'base64').subarray(4)
    if (!verifier.verify(message, raw))
      throw new NoteError('invalid_signature', `invalid signature for key ${tag}`)
    seen.add(tag)
    verified.push(signature)
  }
  if (verified.length === 0) {
    // Name the keys on both sides: a wrong --public-key is the usual cause.
    const found = signatures.map((sig) => `${sig.name}+${hex8(sig.keyId)}`)
    const expected = verifiers.map((v) => `${v.name}+${hex8(v.keyId)}`)
    throw new NoteError(
      'unverified_note',
      `note has no verifiable signatures (signed by ${listOrNone([...new Set(found)])}; ` +
        `the given public key(s): ${listOrNone(expected)}; is it the .vkey of the key that signs?)`,
    )
  }
  return { text, verified, unverified }
}

function listOrNone(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.join(', ')
}

/**
 * Splits a signed note into its text and signature lines without checking any signature (for
 * reporting); throws `NoteError('malformed_note')` on bad syntax.
 *
 * @example
 * const { signatures } = parseNote(bytes)
 */
export function parseNote(note: string | Uint8Array): { text: string; signatures: NoteSignature[] } {
  const malformed = () => new NoteError('malformed_note', 'malformed note')
  let s: string
  if (typeof note === 'string') s = note
  else {
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(note)
    } catch {
      throw malformed()
    }
  }
  if (/\p{Surrogate}/u.test(s)) throw malformed()
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the spec forbids exactly these characters
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) throw malformed()
  const split = s.lastIndexOf('\n\n')
  if (split < 0) throw malformed()
  const text = s.slice(0, split + 1)
  let rest = s.slice(split + 2)
  if (rest === '' || !rest.endsWith('\n')) throw malformed()
  const signatures: NoteSignature[] = []
  while (rest !== '') {
    const end = rest.indexOf('\n')
    const line = rest.slice(0, end)
    rest = rest.slice(end + 1)
    if (!line.startsWith('— ')) throw malformed()
    const body = line.slice(2)
    const space = body.indexOf(' ')
    if (space <= 0) throw malformed()
    const name = body.slice(0, space)
    const b64 = body.slice(space + 1)
    if (!isKeyName(name) || !BASE64.test(b64) || b64.length % 4 !== 0) throw malformed()
    const bytes = Buffer.from(b64, 'base64')
    if (bytes.length < 5 || bytes.toString('base64') !== b64) throw malformed()
    signatures.push({ name, keyId: bytes.readUInt32BE(0), base64: b64 })
    if (signatures.length > MAX_SIGNATURES) throw malformed()
  }
  return { text, signatures }
}

function parseKeyParts(
  name: string,
  idHex: string,
  keyB64: string,
): { id: number; type: number; key: Buffer } {
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(idHex) || !BASE64.test(keyB64) || keyB64.length % 4 !== 0) {
    throw new NoteError('malformed_key', 'malformed key')
  }
  const bytes = Buffer.from(keyB64, 'base64')
  if (bytes.length < 2 || bytes.toString('base64') !== keyB64)
    throw new NoteError('malformed_key', 'malformed key')
  return { id: Number.parseInt(idHex, 16), type: bytes[0]!, key: bytes.subarray(1) }
}

/** Splits at the first `count - 1` plus signs (the base64 key at the end may hold `+` itself). */
function splitKey(text: string, count: number): string[] | undefined {
  const parts: string[] = []
  let rest = text
  for (let i = 1; i < count; i++) {
    const plus = rest.indexOf('+')
    if (plus < 0) return undefined
    parts.push(rest.slice(0, plus))
    rest = rest.slice(plus + 1)
  }
  parts.push(rest)
  return parts
}

function isKeyName(name: string): boolean {
  return name !== '' && !/[\s+]/u.test(name)
}

function checkKeyName(name: string): void {
  if (!isKeyName(name)) throw new NoteError('malformed_key', 'a key name is non-empty, without spaces or "+"')
}

function checkNoteText(text: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the spec forbids exactly these characters
  if (!text.endsWith('\n') || /[\u0000-\u0009\u000b-\u001f]/.test(text)) {
    throw new NoteError('malformed_note', 'malformed note')
  }
}

function privateKeyOf(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

function publicKeyOf(privateKey: KeyObject): Buffer {
  return createPublicKey(privateKey)
    .export({ format: 'der', type: 'spki' })
    .subarray(ED25519_SPKI_PREFIX.length)
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0')
}
