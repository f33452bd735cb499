// Pairing state for `verifyLog` (`rules.pairing`): one entry per key ever opened (for session logs, every
// session id: hundreds of thousands in a big log).
// A Map of strings cost about 1 µs per lookup there (fresh key strings, cache misses, GC); this table
// keeps 64-bit key hashes, states and the ids' bytes in a few typed arrays, and compares the bytes on a
// hash match, so it stays exact. Ids arrive from `checkChunk` already hashed and encoded, off the main thread.

/** A key seen in an opening record and not yet in a closing one. */
export const OPENED = 1
/** A key seen in its closing record. */
export const CLOSED = 2

const EMPTY = 0
const NON_ASCII = 0xff

/**
 * Collects keys (e.g. session ids) as bytes: as is when all ASCII, else a 0xff marker and the UTF-16 code units,
 * so two different strings never encode alike. `ends[i]` is where the i-th id ends in `bytes`.
 */
export class IdWriter {
  bytes: Uint8Array
  end = 0

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity)
  }

  write(id: string): number {
    const need = this.end + 1 + id.length * 2
    if (need > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(need, this.bytes.length * 2))
      bigger.set(this.bytes.subarray(0, this.end))
      this.bytes = bigger
    }
    const bytes = this.bytes
    let end = this.end
    for (let i = 0; i < id.length; i++) {
      const unit = id.charCodeAt(i)
      if (unit >= 0x80) {
        end = encodeWide(id, bytes, this.end)
        break
      }
      bytes[end++] = unit
    }
    this.end = end
    return end
  }
}

function encodeWide(id: string, bytes: Uint8Array, at: number): number {
  let end = at
  bytes[end++] = NON_ASCII
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i)
    bytes[end++] = unit >>> 8
    bytes[end++] = unit & 0xff
  }
  return end
}

/** The string `IdWriter.write` wrote to `bytes[from, to)`. */
export function decodeId(bytes: Uint8Array, from: number, to: number): string {
  if (to > from && bytes[from] === NON_ASCII) {
    let out = ''
    for (let i = from + 1; i + 1 < to; i += 2)
      out += String.fromCharCode(((bytes[i] as number) << 8) | (bytes[i + 1] as number))
    return out
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString('latin1')
}

/**
 * Two 32-bit halves of a seeded hash of `id` (seed: per run, so a crafted log cannot make probing
 * quadratic). Written to `out[at]` and `out[at + 1]`.
 */
export function hashId(id: string, seed: number, out: Int32Array, at: number): void {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i)
    h1 = Math.imul(h1 ^ unit, 2654435761)
    h2 = Math.imul(h2 ^ unit, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  out[at] = h1
  out[at + 1] = h2
}

/**
 * Open-addressing table from key (hash + bytes) to its state. A slot is four int32s side by
 * side (hash high, hash low, id offset in the arena, id length * 4 + state; 0 = empty), so a probe
 * touches one cache line.
 */
export class PairTable {
  #mask: number
  #slots: Int32Array
  #arena = new Uint8Array(64 * 1024)
  #arenaEnd = 0
  #size = 0

  constructor(capacity = 1024) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(16, capacity)))
    this.#mask = slots - 1
    this.#slots = new Int32Array(slots * 4)
  }

  get size(): number {
    return this.#size
  }

  /** The slot holding the id, or `~slot` of the empty slot where it would go. */
  find(hi: number, lo: number, bytes: Uint8Array, from: number, to: number): number {
    const mask = this.#mask
    const table = this.#slots
    let slot = hi & mask
    for (;;) {
      const at = slot * 4
      const meta = table[at + 3] as number
      if (meta === EMPTY) return ~slot
      if (table[at] === hi && table[at + 1] === lo && meta >>> 2 === to - from) {
        if (this.#sameBytes(table[at + 2] as number, bytes, from, to)) return slot
      }
      slot = (slot + 1) & mask
    }
  }

  stateAt(slot: number): number {
    return (this.#slots[slot * 4 + 3] as number) & 3
  }

  setState(slot: number, state: number): void {
    const at = slot * 4 + 3
    this.#slots[at] = ((this.#slots[at] as number) & ~3) | state
  }

  /** Adds an id that `find` did not find; `notFound` is what `find` returned (`~slot`). */
  insert(
    notFound: number,
    hi: number,
    lo: number,
    bytes: Uint8Array,
    from: number,
    to: number,
    state: number,
  ): void {
    let slot = ~notFound
    if ((this.#size + 1) * 2 > this.#mask + 1) {
      this.#grow()
      slot = ~this.find(hi, lo, bytes, from, to)
    }
    const length = to - from
    if (this.#arenaEnd + length > this.#arena.length) {
      const bigger = new Uint8Array(Math.max(this.#arena.length * 2, this.#arenaEnd + length))
      bigger.set(this.#arena.subarray(0, this.#arenaEnd))
      this.#arena = bigger
    }
    const arena = this.#arena
    const shift = this.#arenaEnd - from
    // A loop: a subarray per id (to use set) costs more than copying ~26 bytes.
    for (let i = from; i < to; i++) arena[shift + i] = bytes[i] as number
    const table = this.#slots
    const at = slot * 4
    table[at] = hi
    table[at + 1] = lo
    table[at + 2] = this.#arenaEnd
    table[at + 3] = (length << 2) | state
    this.#arenaEnd += length
    this.#size++
  }

  #sameBytes(offset: number, bytes: Uint8Array, from: number, to: number): boolean {
    const arena = this.#arena
    const shift = offset - from
    for (let i = from; i < to; i++) if (arena[shift + i] !== bytes[i]) return false
    return true
  }

  #grow(): void {
    const old = this.#slots
    const slots = (this.#mask + 1) * 2
    const mask = slots - 1
    const table = new Int32Array(slots * 4)
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 3] === EMPTY) continue
      let slot = (old[at] as number) & mask
      while (table[slot * 4 + 3] !== EMPTY) slot = (slot + 1) & mask
      table.set(old.subarray(at, at + 4), slot * 4)
    }
    this.#mask = mask
    this.#slots = table
  }
}
