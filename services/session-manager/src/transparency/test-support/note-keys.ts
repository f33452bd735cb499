import { generateNoteKey, parseSignerKey, parseVerifierKey } from '@care/tlog'

/**
 * A fresh Ed25519 note key pair for `name`: the key texts (as `care-sessions keygen` writes them) and
 * the parsed signer and verifier.
 *
 * @example
 * const { signer, verifierKey } = noteKeys('care.example/sessions')
 */
export function noteKeys(name: string) {
  const { signerKey, verifierKey } = generateNoteKey(name)
  return {
    signerKey,
    verifierKey,
    signer: parseSignerKey(signerKey),
    verifier: parseVerifierKey(verifierKey),
  }
}

/** What {@link noteKeys} returns. */
export type NoteKeys = ReturnType<typeof noteKeys>
