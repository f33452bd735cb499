import { randomFillSync } from 'node:crypto'
import { monotonicFactory } from 'ulid'

/**
 * A uniform `[0, 1)` random source backed by a pool of cryptographic random bytes, refilled
 * in bulk. The `ulid` default asks the OS for randomness on every character, which costs
 * tens of microseconds per id; one bulk refill serves hundreds of ids with the same entropy.
 *
 * @example
 * const random = pooledRandom()
 * random() // 0.7313...
 */
export function pooledRandom(poolWords = 4096): () => number {
  const pool = new Uint32Array(poolWords)
  let next = pool.length
  return function pooledRandomNumber() {
    if (next === pool.length) {
      randomFillSync(pool)
      next = 0
    }
    return pool[next++]! / 0x1_0000_0000
  }
}

/** Generates ULIDs, monotonic within this process (strictly increasing even within one millisecond). */
export type IdFactory = (now?: number) => string

/**
 * Creates the ULID factory used for `session_id` and `record_id`: monotonic, so ids created in
 * the same millisecond still sort in creation order, with 80 random bits from a pooled CSPRNG.
 *
 * @example
 * const newId = createIdFactory()
 * const sessionId = newId(Date.now())
 */
export function createIdFactory(): IdFactory {
  return monotonicFactory(pooledRandom())
}
