import type { NodeStore } from '@care/tlog'

const HASH = 32

/**
 * A `NodeStore` in memory with each level packed into one growing buffer: 32 bytes per stored hash and
 * no object per node (about 64 bytes per leaf over all levels), for the PostgreSQL store's tree, which is
 * rebuilt from the rows at every start and never written to disk.
 *
 * @example
 * const tree = new MerkleTree(new PackedNodeStore())
 */
export class PackedNodeStore implements NodeStore {
  readonly #levels: { bytes: Buffer; count: number }[] = []

  get leafCount(): number {
    return this.#levels[0]?.count ?? 0
  }

  put(level: number, index: number, hash: Buffer): void {
    let stored = this.#levels[level]
    if (stored === undefined) {
      stored = { bytes: Buffer.alloc(HASH * 1024), count: 0 }
      this.#levels[level] = stored
    }
    if (index !== stored.count)
      throw new RangeError(`level ${level}: expected index ${stored.count}, got ${index}`)
    if ((index + 1) * HASH > stored.bytes.length) {
      const bigger = Buffer.alloc(stored.bytes.length * 2)
      stored.bytes.copy(bigger, 0, 0, index * HASH)
      stored.bytes = bigger
    }
    hash.copy(stored.bytes, index * HASH)
    stored.count++
  }

  node(level: number, index: number): Buffer {
    const stored = this.#levels[level]
    if (stored === undefined || index < 0 || index >= stored.count) {
      throw new RangeError(`no stored hash at level ${level}, index ${index}`)
    }
    // A copy: a later truncate and put may reuse the slot.
    return Buffer.from(stored.bytes.subarray(index * HASH, (index + 1) * HASH))
  }

  truncate(leafCount: number): void {
    for (const [level, stored] of this.#levels.entries()) {
      stored.count = Math.min(stored.count, Math.floor(leafCount / 2 ** level))
    }
  }

  flush(): void {}
  close(): void {}
}
