import { HASH_SIZE } from './hash.js'
import { NoteError, type NoteSigner, type NoteVerifier, type OpenedNote, openNote, signNote } from './note.js'

/**
 * A C2SP tlog-checkpoint: the log's origin, the tree size and the RFC 6962 root hash at that size,
 * plus optional opaque extension lines.
 *
 * @example
 * const checkpoint: Checkpoint = { origin: 'care.example/sessions', size: 42, rootHash: tree.root() }
 */
export interface Checkpoint {
  origin: string
  size: number
  rootHash: Buffer
  extensions?: string[]
}

/**
 * Why a checkpoint body was refused.
 *
 * @example
 * try { parseCheckpoint(text) } catch (err) { if (err instanceof CheckpointError) console.log(err.message) }
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError'
}

/**
 * The checkpoint's note text: `<origin>\n<size>\n<base64 root>\n` followed by any extension lines.
 *
 * @example
 * formatCheckpoint({ origin: 'example.com/log', size: 0, rootHash: emptyRoot() })
 */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions = [] } = checkpoint
  if (origin === '' || origin.includes('\n')) throw new CheckpointError('origin must be one non-empty line')
  if (!Number.isSafeInteger(size) || size < 0)
    throw new CheckpointError('size must be a non-negative integer')
  if (rootHash.length !== HASH_SIZE) throw new CheckpointError('root hash must be 32 bytes')
  for (const line of extensions) {
    if (line === '' || line.includes('\n'))
      throw new CheckpointError('extension lines must be non-empty lines')
  }
  return [origin, String(size), rootHash.toString('base64'), ...extensions]
    .map((line) => `${line}\n`)
    .join('')
}

/**
 * Parses a checkpoint's note text (strictly: decimal size without leading zeros, 32-byte base64 root).
 *
 * @example
 * const { size, rootHash } = parseCheckpoint(openNote(bytes, verifiers).text)
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new CheckpointError('checkpoint text must end in a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) throw new CheckpointError('checkpoint needs origin, size and root hash lines')
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]]
  if (origin === '') throw new CheckpointError('origin line is empty')
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new CheckpointError(`bad tree size line ${JSON.stringify(sizeText)}`)
  }
  const rootHash = Buffer.from(rootText, 'base64')
  if (rootHash.length !== HASH_SIZE || rootHash.toString('base64') !== rootText) {
    throw new CheckpointError('root hash line is not the base64 of 32 bytes')
  }
  if (extensions.some((line) => line === '')) throw new CheckpointError('extension lines must be non-empty')
  return { origin, size: Number(sizeText), rootHash, ...(extensions.length > 0 ? { extensions } : {}) }
}

/**
 * Formats and signs a checkpoint as a C2SP signed note.
 *
 * @example
 * writeFileAtomic(path, signCheckpoint({ origin, size: tree.size, rootHash: tree.root() }, [signer]))
 */
export function signCheckpoint(checkpoint: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers)
}

/**
 * Opens a signed checkpoint: the note must carry a valid signature by one of `verifiers` (unknown keys
 * are ignored, see `openNote`) and, when `origin` is given, name that origin.
 *
 * @example
 * const { checkpoint } = openCheckpoint(readFileSync(path), [verifier], 'care.example/sessions')
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  origin?: string,
): { checkpoint: Checkpoint; note: OpenedNote } {
  const opened = openNote(note, verifiers)
  const checkpoint = parseCheckpoint(opened.text)
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new NoteError('unverified_note', `checkpoint origin ${checkpoint.origin} is not ${origin}`)
  }
  return { checkpoint, note: opened }
}
