import { describe, expect, it } from 'vitest'
import {
  type Checkpoint,
  CheckpointError,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from './checkpoint.js'
import { emptyRoot, leafHash } from './hash.js'
import {
  generateNoteKey,
  NoteError,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signerKeyFromSeed,
  signNote,
  verifierKeyOf,
} from './note.js'
import { independentOpenCheckpoint } from './test-support/independent-verifier.js'

// golang.org/x/mod/sumdb/note note_test.go (BSD-3-Clause, The Go Authors).
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop'
const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const PETER_SIG =
  '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n'
const ENOCH_SIG =
  '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n'
// C2SP signed-note §Verifier keys, Example.
const C2SP_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'
const C2SP_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n'

describe('signed-note keys (Go sumdb/note encodings)', () => {
  it('parses the reference verifier and signer keys and derives the same key id', () => {
    const verifier = parseVerifierKey(PETER_VKEY)
    const signer = parseSignerKey(PETER_SKEY)
    expect(verifier.name).toBe('PeterNeumann')
    expect(verifier.keyId).toBe(0xc74f20a3)
    expect(signer.keyId).toBe(0xc74f20a3)
    expect(verifierKeyOf(PETER_SKEY)).toBe(PETER_VKEY)
    expect(parseVerifierKey(C2SP_VKEY).keyId).toBe(0x530d903a)
  })

  it('refuses every truncation and every one-byte change of a verifier key', () => {
    for (let i = 0; i < PETER_VKEY.length; i++) {
      expect(() => parseVerifierKey(PETER_VKEY.slice(0, i))).toThrow(NoteError)
      const bumped =
        PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1)
      expect(() => parseVerifierKey(bumped), bumped).toThrow(NoteError)
    }
    // Wrong key length and unknown algorithm, each with a key id recomputed to match (from the Go tests).
    expect(() =>
      parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
    ).toThrow(NoteError)
    expect(() =>
      parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ).toThrow(NoteError)
  })

  it('refuses every truncation and every one-byte change of a signer key', () => {
    for (let i = 1; i < PETER_SKEY.length; i++)
      expect(() => parseSignerKey(PETER_SKEY.slice(i))).toThrow(NoteError)
    for (let i = 0; i < PETER_SKEY.length; i++) {
      expect(() => parseSignerKey(PETER_SKEY.slice(0, i))).toThrow(NoteError)
      const bumped =
        PETER_SKEY.slice(0, i) + String.fromCharCode(PETER_SKEY.charCodeAt(i) + 1) + PETER_SKEY.slice(i + 1)
      expect(() => parseSignerKey(bumped), bumped).toThrow(NoteError)
    }
  })

  it('generates key pairs whose signer and verifier agree, and derives keys from a seed deterministically', () => {
    const { signerKey, verifierKey } = generateNoteKey('care.example/sessions')
    const signer = parseSignerKey(signerKey)
    const verifier = parseVerifierKey(verifierKey)
    expect(signer.keyId).toBe(verifier.keyId)
    const signature = signer.sign(Buffer.from('hi'))
    expect(verifier.verify(Buffer.from('hi'), signature)).toBe(true)
    expect(verifier.verify(Buffer.from('hj'), signature)).toBe(false)
    const seed = Buffer.alloc(32, 7)
    expect(signerKeyFromSeed('a.example', seed)).toEqual(signerKeyFromSeed('a.example', seed))
    expect(() => generateNoteKey('bad name')).toThrow(NoteError)
  })
})

describe('signed notes', () => {
  it('signs the Go reference text byte for byte like sumdb/note (Ed25519 is deterministic)', () => {
    expect(signNote(GO_TEXT, [parseSignerKey(PETER_SKEY)])).toBe(`${GO_TEXT}\n${PETER_SIG}`)
  })

  it('opens the C2SP example note with its verifier key', () => {
    const opened = openNote(C2SP_NOTE, [parseVerifierKey(C2SP_VKEY)])
    expect(opened.text).toBe('This is an example message.\n')
    expect(opened.verified).toHaveLength(1)
  })

  it('accepts a note when any configured key verifies and reports signatures by unknown keys apart', () => {
    const peter = parseVerifierKey(PETER_VKEY)
    const enoch = parseVerifierKey(ENOCH_VKEY)
    const note = `${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`
    const one = openNote(note, [peter])
    expect(one.verified.map((s) => s.name)).toEqual(['PeterNeumann'])
    expect(one.unverified.map((s) => s.name)).toEqual(['EnochRoot'])
    const both = openNote(note, [peter, enoch])
    expect(both.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot'])
    expect(both.unverified).toEqual([])
    // Key rotation: only the new key is configured, the old one signed too.
    expect(openNote(note, [enoch]).verified.map((s) => s.keyId)).toEqual([0xaf0cfe78])
  })

  it('rejects a note signed only by unknown keys', () => {
    const note = `${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`
    expect(() => openNote(note, [])).toThrow(expect.objectContaining({ code: 'unverified_note' }))
    // Same name, different key: still unknown.
    const impostor = parseVerifierKey(signerKeyFromSeed('PeterNeumann', Buffer.alloc(32, 1)).verifierKey)
    expect(() => openNote(note.replace(ENOCH_SIG, ''), [impostor])).toThrow(
      expect.objectContaining({ code: 'unverified_note' }),
    )
  })

  it('names the signing keys found and the keys given when no signature verifies (a wrong public key)', () => {
    const note = `${GO_TEXT}\n${PETER_SIG}`
    const stranger = parseVerifierKey(
      signerKeyFromSeed('care.example/other', Buffer.alloc(32, 2)).verifierKey,
    )
    const hex = stranger.keyId.toString(16).padStart(8, '0')
    expect(() => openNote(note, [stranger])).toThrow(
      new RegExp(
        `no verifiable signatures \\(signed by PeterNeumann\\+[0-9a-f]{8}; the given public key\\(s\\): care\\.example/other\\+${hex};`,
      ),
    )
    expect(() => openNote(note, [])).toThrow(/the given public key\(s\): none;/)
  })

  it('rejects a note whose known key signature does not verify, and a note with an edited text', () => {
    const peter = parseVerifierKey(PETER_VKEY)
    const badSig = `${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`
    expect(() => openNote(`${GO_TEXT}\n${badSig}`, [peter])).toThrow(
      expect.objectContaining({ code: 'invalid_signature' }),
    )
    expect(() => openNote(`${GO_TEXT.replace('answer', 'anwser')}\n${PETER_SIG}`, [peter])).toThrow(
      expect.objectContaining({ code: 'invalid_signature' }),
    )
  })

  it('deduplicates repeated signatures and refuses ambiguous verifier lists', () => {
    const peter = parseVerifierKey(PETER_VKEY)
    const enoch = parseVerifierKey(ENOCH_VKEY)
    const opened = openNote(`${GO_TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}`, [peter])
    expect(opened.verified).toHaveLength(1)
    expect(opened.unverified).toHaveLength(1)
    expect(() => openNote(`${GO_TEXT}\n${ENOCH_SIG}`, [enoch, peter, enoch])).toThrow(
      expect.objectContaining({ code: 'ambiguous_key' }),
    )
    expect(openNote(`${GO_TEXT}\n${PETER_SIG}`, [enoch, peter, enoch]).verified).toHaveLength(1)
  })

  it('rejects malformed notes like the Go reference', () => {
    const peter = parseVerifierKey(PETER_VKEY)
    const bad = [
      GO_TEXT,
      `${GO_TEXT}\n`,
      `${GO_TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\u0001${GO_TEXT}\n${PETER_SIG}`,
      `${GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${GO_TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${GO_TEXT}\n${PETER_SIG.repeat(101)}`,
    ]
    for (const note of bad)
      expect(() => openNote(note, [peter]), note).toThrow(expect.objectContaining({ code: 'malformed_note' }))
    expect(() =>
      parseNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${GO_TEXT}\n${PETER_SIG}`)])),
    ).toThrow(NoteError)
  })
})

describe('checkpoints (C2SP tlog-checkpoint)', () => {
  const checkpoint: Checkpoint = {
    origin: 'care.example/sessions',
    size: 3,
    rootHash: leafHash(Buffer.from('x')),
  }

  it('formats origin, decimal size and base64 root, one per line, and parses it back', () => {
    const text = formatCheckpoint(checkpoint)
    expect(text).toBe(`care.example/sessions\n3\n${checkpoint.rootHash.toString('base64')}\n`)
    expect(parseCheckpoint(text)).toEqual(checkpoint)
    const withExtension = formatCheckpoint({ ...checkpoint, extensions: ['timestamp 1700000000'] })
    expect(parseCheckpoint(withExtension).extensions).toEqual(['timestamp 1700000000'])
  })

  it('parses the C2SP example checkpoint body', () => {
    const parsed = parseCheckpoint(
      'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    )
    expect(parsed.size).toBe(20852163)
    expect(parsed.rootHash.toString('base64')).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=')
  })

  it('refuses leading zeros, short roots, missing lines and empty extension lines', () => {
    const root = emptyRoot().toString('base64')
    for (const text of [
      `o\n03\n${root}\n`,
      'o\n3\nAAAA\n',
      `o\n3\n`,
      `o\n-1\n${root}\n`,
      `\n3\n${root}\n`,
      `o\n3\n${root}\n\nx\n`,
      `o\n3\n${root}`,
    ]) {
      expect(() => parseCheckpoint(text), text).toThrow(CheckpointError)
    }
  })

  it('signs a checkpoint that the independent verifier opens, and refuses it under another key', () => {
    const { signerKey, verifierKey } = generateNoteKey('care.example/sessions')
    const note = signCheckpoint(checkpoint, [parseSignerKey(signerKey)])
    const independent = independentOpenCheckpoint(note, verifierKey)
    expect(independent).toEqual({ origin: checkpoint.origin, size: 3, root: checkpoint.rootHash })
    expect(openCheckpoint(note, [parseVerifierKey(verifierKey)], 'care.example/sessions').checkpoint).toEqual(
      checkpoint,
    )
    const other = generateNoteKey('care.example/sessions').verifierKey
    expect(() => openCheckpoint(note, [parseVerifierKey(other)])).toThrow(NoteError)
    expect(() => openCheckpoint(note, [parseVerifierKey(verifierKey)], 'another.example/log')).toThrow(
      NoteError,
    )
    expect(independentOpenCheckpoint(note.replace('\n3\n', '\n4\n'), verifierKey)).toBeUndefined()
  })
})
