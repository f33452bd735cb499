import { createHash, createHmac } from 'node:crypto'
import { readFile } from 'node:fs/promises'

/**
 * What pseudonymised identifiers start with, so nobody mistakes one for a real id.
 *
 * @example
 * const pseudonymised = String(record.user_id).startsWith(PSEUDONYM_PREFIX)
 */
export const PSEUDONYM_PREFIX = 'pseud:'
/**
 * The fields that carry a person's identity in lifecycle events and worker records.
 *
 * @example
 * for (const field of IDENTITY_FIELDS) delete copy[field]
 */
export const IDENTITY_FIELDS = ['user_id', 'performer_id'] as const
const MIN_KEY_BYTES = 16

/**
 * Replaces identities by keyed hashes for datasets that must not carry them. The same key always
 * gives the same pseudonym for the same id (so sessions of one user still group), and without the key
 * a pseudonym cannot be reversed or recomputed from a guessed id. `keyId` names the key in manifests
 * without revealing it.
 *
 * @example
 * const pseudonymizer = createPseudonymizer(await loadPseudonymKey('/secrets/export.key'))
 * pseudonymizer.apply({ user_id: 'user-42' }) // { user_id: 'pseud:5f0c…' }
 */
export interface Pseudonymizer {
  readonly keyId: string
  /** The pseudonym of one id: `pseud:` + HMAC-SHA256(key, id) in hex. */
  pseudonym(id: string): string
  /** A copy of `record` with every identity field pseudonymised. */
  apply<T extends Record<string, unknown>>(record: T): T
}

/**
 * Builds a `Pseudonymizer` from a secret key of at least 16 bytes.
 *
 * @example
 * const p = createPseudonymizer(Buffer.from(process.env.CARE_PSEUDONYM_KEY ?? '', 'utf8'))
 */
export function createPseudonymizer(key: Uint8Array): Pseudonymizer {
  if (key.length < MIN_KEY_BYTES) {
    throw new RangeError(`the pseudonymisation key must have at least ${MIN_KEY_BYTES} bytes`)
  }
  const secret = Buffer.from(key)
  const cache = new Map<string, string>()
  const pseudonym = (id: string): string => {
    let value = cache.get(id)
    if (value === undefined) {
      value = PSEUDONYM_PREFIX + createHmac('sha256', secret).update(id, 'utf8').digest('hex')
      // Ids repeat a lot (one user, many events); keep the cache bounded.
      if (cache.size >= 65_536) cache.clear()
      cache.set(id, value)
    }
    return value
  }
  return {
    keyId: createHash('sha256').update('care-pseudonym-key-id\0').update(secret).digest('hex').slice(0, 16),
    pseudonym,
    apply(record) {
      const copy: Record<string, unknown> = { ...record }
      for (const field of IDENTITY_FIELDS) {
        const value = copy[field]
        if (typeof value === 'string') copy[field] = pseudonym(value)
      }
      return copy as typeof record
    },
  }
}

/**
 * Reads a key file (raw bytes; one trailing newline is ignored, so `openssl rand -hex 32 > key` works).
 *
 * @example
 * const key = await loadPseudonymKey(flags['pseudonymize-key-file'])
 */
export async function loadPseudonymKey(path: string): Promise<Buffer> {
  const bytes = await readFile(path)
  const end =
    bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? bytes.length - 2 : bytes.length - 1) : bytes.length
  return bytes.subarray(0, end)
}
