const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * A new ULID (26 upper-case Crockford base32 characters: 48-bit millisecond time, 80 random bits)
 * from the platform's `crypto.getRandomValues`, so it works the same in browsers and Node.
 *
 * @example
 * const recordId = newRecordId() // '01JNC3G8Z9X7W6V5T4S3R2Q1P0'-shaped
 */
export function newRecordId(now: number = Date.now()): string {
  let time = ''
  let rest = now
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[rest % 32] + time
    rest = Math.floor(rest / 32)
  }
  const random = crypto.getRandomValues(new Uint8Array(16))
  let tail = ''
  for (const byte of random) tail += CROCKFORD[byte % 32]
  return time + tail
}
