import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { HASH_SIZE } from './hash.js'
import type { NodeReader } from './proof.js'

/**
 * Storage port for the hashes of complete subtrees, so proofs can be served for any size: `put` is
 * called in order for each level (index 0, 1, 2, …), `node` reads one back, `leafCount` is how many
 * leaves the stored levels cover consistently, `truncate` forgets everything beyond a leaf count.
 *
 * @example
 * const store: NodeStore = new MemoryNodeStore()
 * const tree = new MerkleTree(store)
 */
export interface NodeStore extends NodeReader {
  readonly leafCount: number
  put(level: number, index: number, hash: Buffer): void
  truncate(leafCount: number): void
  /** Makes written hashes durable enough to survive a process crash (derived data: no fsync needed). */
  flush(): void
  close(): void
}

/**
 * A `NodeStore` in memory (tests, short-lived trees, verifiers).
 *
 * @example
 * const tree = new MerkleTree(new MemoryNodeStore())
 */
export class MemoryNodeStore implements NodeStore {
  readonly #levels: Buffer[][] = []

  get leafCount(): number {
    return this.#levels[0]?.length ?? 0
  }

  put(level: number, index: number, hash: Buffer): void {
    const hashes = this.#levels[level] ?? []
    this.#levels[level] = hashes
    if (index !== hashes.length)
      throw new RangeError(`level ${level}: expected index ${hashes.length}, got ${index}`)
    hashes.push(hash)
  }

  node(level: number, index: number): Buffer {
    const hash = this.#levels[level]?.[index]
    if (hash === undefined) throw new RangeError(`no stored hash at level ${level}, index ${index}`)
    return hash
  }

  truncate(leafCount: number): void {
    for (const [level, hashes] of this.#levels.entries())
      hashes.length = Math.min(hashes.length, Math.floor(leafCount / 2 ** level))
  }

  flush(): void {}
  close(): void {}
}

const LEVEL_FILE = /^level-(\d{2})\.hashes$/
const FLUSH_BYTES = 64 * 1024

/** File name of one level: `level-00.hashes` … `level-63.hashes`. */
export function levelFileName(level: number): string {
  return `level-${String(level).padStart(2, '0')}.hashes`
}

/**
 * A `NodeStore` on disk: one flat file per tree level, `level-NN.hashes`, holding the 32-byte hashes of
 * that level's complete subtrees in index order (level 0 = leaf hashes). The node at (level, index) is
 * at byte `index·32` of its level's file, so a proof costs O(log n) 32-byte reads. The files are derived
 * data: on open they are cut back to the largest leaf count every level covers (a crash may leave
 * ragged tails), and a caller that finds them disagreeing with the log deletes and rebuilds them.
 * Writes are buffered and appended on `flush` (and whenever 64 KiB are pending).
 *
 * @example
 * const store = FileNodeStore.open('/var/lib/care/tree')
 * const tree = new MerkleTree(store)
 */
export class FileNodeStore implements NodeStore {
  readonly #dir: string
  readonly #fds: number[] = []
  readonly #persisted: number[] = []
  /** Per level, hashes not yet written, packed back to back (at most FLUSH_BYTES in all levels). */
  readonly #pending: Buffer[] = []
  readonly #pendingCount: number[] = []
  #pendingBytes = 0
  #leafCount = 0

  private constructor(dir: string) {
    this.#dir = dir
  }

  /** Opens (creating if needed) the store in `dir`, cutting ragged level files back to a consistent size. */
  static open(dir: string): FileNodeStore {
    mkdirSync(dir, { recursive: true })
    const store = new FileNodeStore(dir)
    const counts: number[] = []
    for (const name of readdirSync(dir)) {
      const match = LEVEL_FILE.exec(name)
      if (!match) continue
      const level = Number(match[1])
      store.#openLevel(level)
      counts[level] = Math.floor(fstatSync(store.#fds[level]!).size / HASH_SIZE)
    }
    // Largest n with floor(n / 2^k) ≤ count_k at every level k (missing levels hold 0 hashes).
    let n = counts[0] ?? 0
    for (let level = 1; level < 64 && 2 ** level - 1 < n; level++) {
      n = Math.min(n, ((counts[level] ?? 0) + 1) * 2 ** level - 1)
    }
    store.truncate(n)
    return store
  }

  /** Deletes every level file in `dir` (the store is rebuilt from the log afterwards). */
  static remove(dir: string): void {
    for (const name of safeReaddir(dir)) if (LEVEL_FILE.test(name)) rmSync(join(dir, name), { force: true })
  }

  get leafCount(): number {
    return this.#leafCount
  }

  put(level: number, index: number, hash: Buffer): void {
    const count = this.#pendingCount[level] ?? 0
    const expected = (this.#persisted[level] ?? 0) + count
    if (index !== expected) throw new RangeError(`level ${level}: expected index ${expected}, got ${index}`)
    if (hash.byteLength !== HASH_SIZE)
      throw new RangeError(`a hash is ${HASH_SIZE} bytes, got ${hash.byteLength}`)
    // Copied into one buffer per level, so a flush is one write per level without concatenating.
    let pending = this.#pending[level]
    if (pending === undefined || pending.byteLength < (count + 1) * HASH_SIZE) {
      // Grown by doubling up to FLUSH_BYTES (never more: a flush comes first), kept across flushes.
      const grown = Buffer.allocUnsafe(Math.min(FLUSH_BYTES, Math.max(4096, 2 * (pending?.byteLength ?? 0))))
      if (pending !== undefined) pending.copy(grown, 0, 0, count * HASH_SIZE)
      pending = grown
      this.#pending[level] = pending
    }
    pending.set(hash, count * HASH_SIZE)
    this.#pendingCount[level] = count + 1
    if (level === 0) this.#leafCount = index + 1
    this.#pendingBytes += HASH_SIZE
    if (this.#pendingBytes >= FLUSH_BYTES) this.flush()
  }

  node(level: number, index: number): Buffer {
    const persisted = this.#persisted[level] ?? 0
    if (index >= persisted) {
      const at = index - persisted
      if (!Number.isSafeInteger(at) || at >= (this.#pendingCount[level] ?? 0))
        throw new RangeError(`no stored hash at level ${level}, index ${index}`)
      return Buffer.from(this.#pending[level]!.subarray(at * HASH_SIZE, (at + 1) * HASH_SIZE))
    }
    const out = Buffer.allocUnsafe(HASH_SIZE)
    const read = readSync(this.#fds[level]!, out, 0, HASH_SIZE, index * HASH_SIZE)
    if (read !== HASH_SIZE) throw new RangeError(`short read at level ${level}, index ${index}`)
    return out
  }

  flush(): void {
    for (const [level, count] of this.#pendingCount.entries()) {
      if (!count) continue
      if (this.#fds[level] === undefined) this.#openLevel(level)
      const length = count * HASH_SIZE
      const data = this.#pending[level]!
      const at = (this.#persisted[level] ?? 0) * HASH_SIZE
      let written = 0
      while (written < length)
        written += writeSync(this.#fds[level]!, data, written, length - written, at + written)
      this.#persisted[level] = (this.#persisted[level] ?? 0) + count
      this.#pendingCount[level] = 0
    }
    this.#pendingBytes = 0
  }

  truncate(leafCount: number): void {
    this.flush()
    for (const [level, fd] of this.#fds.entries()) {
      if (fd === undefined) continue
      const keep = Math.floor(leafCount / 2 ** level)
      const count = Math.min(this.#persisted[level] ?? 0, keep)
      ftruncateSync(fd, count * HASH_SIZE)
      this.#persisted[level] = count
    }
    this.#leafCount = Math.min(leafCount, this.#persisted[0] ?? 0)
  }

  /** Flushes and fsyncs every level file (only for a clean shutdown; the data is derived). */
  sync(): void {
    this.flush()
    for (const fd of this.#fds) if (fd !== undefined) fsyncSync(fd)
  }

  close(): void {
    this.flush()
    for (const fd of this.#fds) if (fd !== undefined) closeSync(fd)
    this.#fds.length = 0
  }

  #openLevel(level: number): void {
    this.#fds[level] = openSync(
      join(this.#dir, levelFileName(level)),
      constants.O_RDWR | constants.O_CREAT,
      0o644,
    )
    this.#persisted[level] = Math.floor(fstatSync(this.#fds[level]!).size / HASH_SIZE)
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename over the
 * target, fsync of the directory. A crash leaves either the old file or the new one, never a mix.
 *
 * @example
 * writeFileAtomic('/var/lib/care/checkpoints/0000000000001000.checkpoint', note)
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const dir = join(path, '..')
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`
  const fd = openSync(temp, 'w')
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    let written = 0
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, path)
  const dirFd = openSync(dir, 'r')
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
}
