import { dirname, normalize, sep } from 'node:path'
import type { LogFileHandle, LogFileSystem, OpenMode } from '../file-system.js'

/**
 * What survives a simulated crash:
 * - `power-loss`: only what was made durable: file bytes after fdatasync/fsync, directory entries
 *   (created, renamed, removed files and directories) after an fsync of their directory.
 * - `torn`: a power loss in the middle of writeback: each file with unsynced changes keeps either
 *   its durable bytes or a random prefix of its newest bytes (a partly written tail); unsynced
 *   directory entries are still lost.
 * - `process-kill`: SIGKILL: the page cache survives, so everything written survives.
 */
export type CrashKind = 'power-loss' | 'torn' | 'process-kill'

/** Thrown by every call once the simulated machine has crashed, until `reboot()`. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash'
  readonly code = 'ECRASHED'
}

interface FileNode {
  kind: 'file'
  /** Page cache: what reads see. `data` has spare capacity; `size` is the file length. */
  data: Buffer
  size: number
  /** What is on the platter. */
  durable: Buffer
  durableSize: number
  /** Lowest offset changed since the last sync (Infinity when clean). */
  dirtyFrom: number
  mtimeMs: number
}

interface DirNode {
  kind: 'dir'
  entries: Map<string, Node>
  durableEntries: Map<string, Node>
}

type Node = FileNode | DirNode

/** The mutating calls a crash point is counted in (reads never change what a crash leaves). */
export type MutatingCall =
  | 'open'
  | 'write'
  | 'datasync'
  | 'sync'
  | 'truncate'
  | 'mkdir'
  | 'rename'
  | 'unlink'
  | 'syncDir'

/**
 * An in-memory `LogFileSystem` that models the page cache and the disk separately, so a test can
 * cut the power at any call and see only what the log made durable. Paths are absolute; `/` is a
 * durable root. `crashAt(n)` arms a crash at the nth mutating call from now (that call does not take
 * effect and throws `SimulatedCrash`, as does every later call of this incarnation); `crash()` crashes
 * at once; `reboot()` keeps what the `CrashKind` says survives and starts a new incarnation whose
 * handles are fresh. Deterministic given the `random` source (used only by `torn`).
 *
 * @example
 * const fs = new PowerLossFileSystem()
 * const { log } = await EventLog.open({ dir: '/data', fs })
 * fs.crashAt(7)
 * await Promise.allSettled(events.map((e) => log.append(e)))
 * fs.reboot('power-loss')
 * const { report } = await EventLog.open({ dir: '/data', fs })
 */
export class PowerLossFileSystem implements LogFileSystem {
  #root: DirNode = { kind: 'dir', entries: new Map(), durableEntries: new Map() }
  #epoch = 0
  #crashed = false
  #crashIn: number | undefined
  #random: () => number
  #clock = 0
  /** Mutating calls so far (all incarnations): the space crash points are drawn from. */
  mutations = 0

  constructor(options: { random?: () => number } = {}) {
    this.#random = options.random ?? Math.random
  }

  get crashed(): boolean {
    return this.#crashed
  }

  /** Crash at the nth mutating call from now (1 = the next one). */
  crashAt(n: number): void {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`crashAt needs n >= 1, got ${n}`)
    this.#crashIn = n
  }

  /** Crash now: every call of this incarnation throws from here on. */
  crash(): void {
    this.#crashed = true
    this.#crashIn = undefined
  }

  /** Restarts the machine after a crash (or crashes it first), keeping what `kind` says survives. */
  reboot(kind: CrashKind = 'power-loss'): void {
    this.#crashed = false
    this.#crashIn = undefined
    this.#epoch++
    if (kind !== 'process-kill') this.#root = this.#survivor(this.#root, kind)
  }

  /** The bytes a reader sees now (page cache) from `from` on, or undefined when the file does not exist. */
  contents(path: string, from = 0): Buffer | undefined {
    const node = this.#lookup(path)
    return node?.kind === 'file'
      ? Buffer.from(node.data.subarray(Math.min(from, node.size), node.size))
      : undefined
  }

  /** Names of the files directly in `dir` (no copying, unlike `snapshot`). */
  fileNames(dir: string): string[] {
    const node = this.#lookup(dir)
    if (node?.kind !== 'dir') return []
    return [...node.entries].filter(([, child]) => child.kind === 'file').map(([name]) => name)
  }

  /** Every file under `dir` with its current bytes, by path relative to `dir` (for byte comparisons). */
  snapshot(dir: string): Map<string, Buffer> {
    const out = new Map<string, Buffer>()
    const walk = (node: Node, prefix: string) => {
      if (node.kind === 'file') out.set(prefix, Buffer.from(node.data.subarray(0, node.size)))
      else
        for (const [name, child] of [...node.entries].sort(([a], [b]) => (a < b ? -1 : 1)))
          walk(child, prefix === '' ? name : `${prefix}/${name}`)
    }
    const start = this.#lookup(dir)
    if (start) walk(start, '')
    return out
  }

  /** Writes a file directly and durably, directories on the way included (test setup, e.g. a torn log). */
  put(path: string, bytes: Uint8Array): void {
    const parent = this.#dirOf(path, true)
    let dir = this.#root
    for (const part of partsOf(dirname(normalize(path)))) {
      const next = dir.entries.get(part) as DirNode
      dir.durableEntries.set(part, next)
      dir = next
    }
    const file = newFile()
    setBytes(file, Buffer.from(bytes))
    syncFile(file)
    const name = baseName(path)
    parent.entries.set(name, file)
    parent.durableEntries.set(name, file)
  }

  async open(path: string, mode: OpenMode): Promise<LogFileHandle> {
    const creates = mode !== 'read'
    if (creates) this.#mutate()
    else this.#alive()
    const parent = this.#dirOf(path, false)
    const name = baseName(path)
    let node = parent.entries.get(name)
    if (node?.kind === 'dir') throw errno('EISDIR', 'open', path)
    if (mode === 'createExclusive' && node) throw errno('EEXIST', 'open', path)
    if (!node) {
      if (mode === 'read') throw errno('ENOENT', 'open', path)
      node = newFile()
      node.mtimeMs = ++this.#clock
      parent.entries.set(name, node)
    }
    return this.#handle(node, path, mode)
  }

  async mkdir(path: string): Promise<void> {
    this.#mutate()
    this.#dirOf(`${normalize(path)}${sep}x`, true)
  }

  async readdir(path: string): Promise<string[]> {
    this.#alive()
    const node = this.#lookup(path)
    if (!node) throw errno('ENOENT', 'readdir', path)
    if (node.kind !== 'dir') throw errno('ENOTDIR', 'readdir', path)
    return [...node.entries.keys()].sort()
  }

  async stat(path: string): Promise<{ size: number; mtimeMs: number }> {
    this.#alive()
    const node = this.#lookup(path)
    if (!node) throw errno('ENOENT', 'stat', path)
    return node.kind === 'file' ? { size: node.size, mtimeMs: node.mtimeMs } : { size: 0, mtimeMs: 0 }
  }

  async rename(from: string, to: string): Promise<void> {
    this.#mutate()
    const source = this.#dirOf(from, false)
    const node = source.entries.get(baseName(from))
    if (!node) throw errno('ENOENT', 'rename', from)
    const target = this.#dirOf(to, false)
    source.entries.delete(baseName(from))
    target.entries.set(baseName(to), node)
  }

  async unlink(path: string): Promise<void> {
    this.#mutate()
    const parent = this.#dirOf(path, false)
    const node = parent.entries.get(baseName(path))
    if (!node) throw errno('ENOENT', 'unlink', path)
    if (node.kind === 'dir') throw errno('EISDIR', 'unlink', path)
    parent.entries.delete(baseName(path))
  }

  async syncDir(path: string): Promise<void> {
    this.#mutate()
    const node = this.#lookup(path)
    if (!node) throw errno('ENOENT', 'fsync', path)
    if (node.kind !== 'dir') throw errno('ENOTDIR', 'fsync', path)
    node.durableEntries = new Map(node.entries)
  }

  #handle(node: FileNode, path: string, mode: OpenMode): LogFileHandle {
    const epoch = this.#epoch
    let closed = false
    const check = (mutating: boolean) => {
      if (epoch !== this.#epoch) throw new SimulatedCrash(`handle of ${path} is from before a crash`)
      if (closed) throw errno('EBADF', 'handle', path)
      if (mutating) this.#mutate()
      else this.#alive()
    }
    const writable = () => {
      if (mode === 'read') throw errno('EBADF', 'write', path)
    }
    return {
      read: async (buffer, offset, length, position) => {
        check(false)
        const n = Math.max(0, Math.min(length, node.size - position))
        if (n > 0) node.data.copy(buffer, offset, position, position + n)
        return n
      },
      write: async (buffer, offset, length, position) => {
        writable()
        check(true)
        const bytes = Buffer.from(buffer.buffer, buffer.byteOffset + offset, length)
        writeAt(node, bytes, position)
        node.mtimeMs = ++this.#clock
        return length
      },
      datasync: async () => {
        check(true)
        syncFile(node)
      },
      sync: async () => {
        check(true)
        syncFile(node)
      },
      truncate: async (length) => {
        writable()
        check(true)
        truncateTo(node, length)
        node.mtimeMs = ++this.#clock
      },
      size: async () => {
        check(false)
        return node.size
      },
      close: async () => {
        // Closing never fails and never syncs (close(2) does not flush to disk).
        closed = true
      },
    }
  }

  #alive(): void {
    if (this.#crashed) throw new SimulatedCrash('the machine has crashed')
  }

  #mutate(): void {
    this.#alive()
    if (this.#crashIn !== undefined && --this.#crashIn === 0) {
      this.crash()
      throw new SimulatedCrash('power cut at this call')
    }
    this.mutations++
  }

  #lookup(path: string): Node | undefined {
    let node: Node = this.#root
    for (const part of partsOf(path)) {
      if (node.kind !== 'dir') return undefined
      const next: Node | undefined = node.entries.get(part)
      if (!next) return undefined
      node = next
    }
    return node
  }

  /** The directory holding `path`; with `create`, missing directories are made (not durably). */
  #dirOf(path: string, create: boolean): DirNode {
    let node: DirNode = this.#root
    for (const part of partsOf(dirname(normalize(path)))) {
      let next = node.entries.get(part)
      if (!next) {
        if (!create) throw errno('ENOENT', 'lookup', path)
        next = { kind: 'dir', entries: new Map(), durableEntries: new Map() }
        node.entries.set(part, next)
      }
      if (next.kind !== 'dir') throw errno('ENOTDIR', 'lookup', path)
      node = next
    }
    return node
  }

  /** The tree as the disk holds it: durable entries only, each file as `kind` says. */
  #survivor(dir: DirNode, kind: CrashKind): DirNode {
    const entries = new Map<string, Node>()
    for (const [name, node] of dir.durableEntries) {
      entries.set(name, node.kind === 'dir' ? this.#survivor(node, kind) : this.#survivingFile(node, kind))
    }
    return { kind: 'dir', entries, durableEntries: new Map(entries) }
  }

  #survivingFile(file: FileNode, kind: CrashKind): FileNode {
    const out = newFile()
    out.mtimeMs = file.mtimeMs
    let bytes = file.durable.subarray(0, file.durableSize)
    if (kind === 'torn' && file.dirtyFrom !== Number.POSITIVE_INFINITY && this.#random() < 0.5) {
      const from = Math.min(file.dirtyFrom, file.size)
      const keep = from + Math.floor(this.#random() * (file.size - from + 1))
      bytes = file.data.subarray(0, keep)
    }
    setBytes(out, Buffer.from(bytes))
    syncFile(out)
    return out
  }
}

function newFile(): FileNode {
  return {
    kind: 'file',
    data: Buffer.alloc(0),
    size: 0,
    durable: Buffer.alloc(0),
    durableSize: 0,
    dirtyFrom: Number.POSITIVE_INFINITY,
    mtimeMs: 0,
  }
}

function grow(buffer: Buffer, needed: number, keep: number): Buffer {
  if (needed <= buffer.length) return buffer
  const next = Buffer.alloc(Math.max(needed, buffer.length * 2, 256))
  buffer.copy(next, 0, 0, keep)
  return next
}

function writeAt(file: FileNode, bytes: Buffer, position: number): void {
  const end = position + bytes.length
  file.data = grow(file.data, end, file.size)
  // A write past the end leaves a hole of zeros, like pwrite(2).
  if (position > file.size) file.data.fill(0, file.size, position)
  bytes.copy(file.data, position)
  file.size = Math.max(file.size, end)
  file.dirtyFrom = Math.min(file.dirtyFrom, position)
}

function truncateTo(file: FileNode, length: number): void {
  file.data = grow(file.data, length, file.size)
  if (length > file.size) file.data.fill(0, file.size, length)
  file.size = length
  file.dirtyFrom = Math.min(file.dirtyFrom, length)
}

function setBytes(file: FileNode, bytes: Buffer): void {
  file.data = bytes
  file.size = bytes.length
  file.dirtyFrom = 0
}

/** Makes the page cache durable, copying only what changed since the last sync. */
function syncFile(file: FileNode): void {
  if (file.dirtyFrom === Number.POSITIVE_INFINITY) return
  const from = Math.min(file.dirtyFrom, file.size)
  file.durable = grow(file.durable, file.size, Math.min(from, file.durableSize))
  file.data.copy(file.durable, from, from, file.size)
  file.durableSize = file.size
  file.dirtyFrom = Number.POSITIVE_INFINITY
}

function partsOf(path: string): string[] {
  return normalize(path).split(sep).filter(Boolean)
}

function baseName(path: string): string {
  const parts = partsOf(path)
  const name = parts.at(-1)
  if (name === undefined) throw errno('EINVAL', 'lookup', path)
  return name
}

function errno(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} ${path}`), { code, syscall, path })
}
