import { type LogFileHandle, type LogFileSystem, nodeFileSystem, type OpenMode } from '../file-system.js'

/** Every call the event log makes through its file-system seam, by name. */
export type FsOperation =
  | 'open'
  | 'read'
  | 'write'
  | 'fdatasync'
  | 'fsync'
  | 'ftruncate'
  | 'size'
  | 'close'
  | 'mkdir'
  | 'readdir'
  | 'stat'
  | 'rename'
  | 'unlink'
  | 'fsyncDir'

/**
 * Which calls fail and how. Counting starts when `fail()` is called: `nth: 1` is the next matching call.
 */
export interface FaultSpec {
  /** errno put on the error's `code` (default EIO). */
  errno?: string
  /** Fail the nth matching call from now (default 1). */
  nth?: number
  /** How many consecutive matching calls fail from the nth on: a number or 'forever' (default 1). */
  times?: number | 'forever'
  /** Only calls on paths containing this string / matching this pattern count. */
  path?: string | RegExp
  /** For `write`: really write this many bytes before failing, like a disk that fills up mid-write. */
  bytesBeforeFailure?: number
}

/** Holds calls of one operation until released (to prove something waits for, e.g., fdatasync). */
export interface Gate {
  /** Resolves once at least one call is waiting at the gate. */
  readonly reached: Promise<void>
  readonly waiting: number
  release(): void
}

interface Fault extends Required<Omit<FaultSpec, 'path' | 'bytesBeforeFailure'>> {
  op: FsOperation
  path: string | RegExp | undefined
  bytesBeforeFailure: number | undefined
  seen: number
  failed: number
}

/**
 * Test double for the log's file system: passes every call to a real one, counts calls per operation,
 * and makes chosen calls fail with a chosen errno (once, n times or forever) or wait at a gate.
 * Used by the log's own tests, the HTTP tests (ENOSPC -> 503) and fault-injection suites.
 *
 * @example
 * const fs = new FaultyFileSystem()
 * const { log } = await EventLog.open({ dir, fs })
 * fs.fail('write', { errno: 'ENOSPC' })
 * await expect(log.append(event)).rejects.toMatchObject({ code: 'ENOSPC' })
 * expect(fs.calls.fdatasync).toBeGreaterThan(0)
 */
export class FaultyFileSystem implements LogFileSystem {
  readonly calls: Record<FsOperation, number> = {
    open: 0,
    read: 0,
    write: 0,
    fdatasync: 0,
    fsync: 0,
    ftruncate: 0,
    size: 0,
    close: 0,
    mkdir: 0,
    readdir: 0,
    stat: 0,
    rename: 0,
    unlink: 0,
    fsyncDir: 0,
  }
  readonly #inner: LogFileSystem
  #faults: Fault[] = []
  readonly #gates = new Map<
    FsOperation,
    { promise: Promise<void>; release(): void; arrive(): void; waiting: number }
  >()

  constructor(inner: LogFileSystem = nodeFileSystem) {
    this.#inner = inner
  }

  /** Makes the nth next matching call of `op` fail (see `FaultSpec`). */
  fail(op: FsOperation, spec: FaultSpec = {}): void {
    this.#faults.push({
      op,
      errno: spec.errno ?? 'EIO',
      nth: spec.nth ?? 1,
      times: spec.times ?? 1,
      path: spec.path,
      bytesBeforeFailure: spec.bytesBeforeFailure,
      seen: 0,
      failed: 0,
    })
  }

  /** Removes faults of `op` (all operations when omitted): the "disk has space again" moment. */
  clear(op?: FsOperation): void {
    this.#faults = op ? this.#faults.filter((f) => f.op !== op) : []
  }

  /** From now on, calls of `op` wait until the returned gate is released. */
  hold(op: FsOperation): Gate {
    let release!: () => void
    let arrive!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const reached = new Promise<void>((resolve) => {
      arrive = resolve
    })
    const gate = { promise: released, release, arrive, waiting: 0 }
    this.#gates.set(op, gate)
    return {
      reached,
      get waiting() {
        return gate.waiting
      },
      release: () => {
        this.#gates.delete(op)
        release()
      },
    }
  }

  /** Counts the call, waits at a gate if any, then throws if a fault matches. */
  async before(op: FsOperation, path: string): Promise<Fault | undefined> {
    this.calls[op]++
    const gate = this.#gates.get(op)
    if (gate) {
      gate.waiting++
      gate.arrive()
      await gate.promise
      gate.waiting--
    }
    for (const fault of this.#faults) {
      if (fault.op !== op || !matches(fault.path, path)) continue
      fault.seen++
      if (fault.seen < fault.nth) continue
      if (fault.times !== 'forever' && fault.failed >= fault.times) continue
      fault.failed++
      if (op === 'write' && fault.bytesBeforeFailure !== undefined) return fault
      throw injected(fault.errno, op, path)
    }
    return undefined
  }

  async open(path: string, mode: OpenMode): Promise<LogFileHandle> {
    await this.before('open', path)
    return new FaultyFileHandle(this, path, await this.#inner.open(path, mode))
  }

  async mkdir(path: string): Promise<void> {
    await this.before('mkdir', path)
    return this.#inner.mkdir(path)
  }

  async readdir(path: string): Promise<string[]> {
    await this.before('readdir', path)
    return this.#inner.readdir(path)
  }

  async stat(path: string): Promise<{ size: number; mtimeMs: number }> {
    await this.before('stat', path)
    return this.#inner.stat(path)
  }

  async rename(from: string, to: string): Promise<void> {
    await this.before('rename', from)
    return this.#inner.rename(from, to)
  }

  async unlink(path: string): Promise<void> {
    await this.before('unlink', path)
    return this.#inner.unlink(path)
  }

  async syncDir(path: string): Promise<void> {
    await this.before('fsyncDir', path)
    return this.#inner.syncDir(path)
  }
}

class FaultyFileHandle implements LogFileHandle {
  readonly #fs: FaultyFileSystem
  readonly #path: string
  readonly #inner: LogFileHandle

  constructor(fs: FaultyFileSystem, path: string, inner: LogFileHandle) {
    this.#fs = fs
    this.#path = path
    this.#inner = inner
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    await this.#fs.before('read', this.#path)
    return this.#inner.read(buffer, offset, length, position)
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const partial = await this.#fs.before('write', this.#path)
    if (partial) {
      const bytes = Math.min(length, partial.bytesBeforeFailure ?? 0)
      if (bytes > 0) await this.#inner.write(buffer, offset, bytes, position)
      throw injected(partial.errno, 'write', this.#path)
    }
    return this.#inner.write(buffer, offset, length, position)
  }

  async datasync(): Promise<void> {
    await this.#fs.before('fdatasync', this.#path)
    return this.#inner.datasync()
  }

  async sync(): Promise<void> {
    await this.#fs.before('fsync', this.#path)
    return this.#inner.sync()
  }

  async truncate(length: number): Promise<void> {
    await this.#fs.before('ftruncate', this.#path)
    return this.#inner.truncate(length)
  }

  async size(): Promise<number> {
    await this.#fs.before('size', this.#path)
    return this.#inner.size()
  }

  async close(): Promise<void> {
    // Closing always happens so tests never leak descriptors, but a fault still reports.
    const fault = this.#fs.before('close', this.#path)
    await this.#inner.close()
    await fault
  }
}

function matches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true
  return typeof pattern === 'string' ? path.includes(pattern) : pattern.test(path)
}

function injected(errno: string, op: FsOperation, path: string): Error {
  return Object.assign(new Error(`${errno}: injected fault in ${op} ${path}`), {
    code: errno,
    syscall: op,
    path,
  })
}

/**
 * The real file system with every fsync/fdatasync turned into a no-op: for tests that loop over
 * hundreds of recoveries to check logic, not durability (crash tests keep the real syncs).
 *
 * @example
 * const { log } = await EventLog.open({ dir, fs: withoutSync() })
 */
export function withoutSync(inner: LogFileSystem = nodeFileSystem): LogFileSystem {
  return {
    ...inner,
    async syncDir() {},
    async open(path, mode) {
      const handle = await inner.open(path, mode)
      return {
        read: (...args) => handle.read(...args),
        write: (...args) => handle.write(...args),
        truncate: (length) => handle.truncate(length),
        size: () => handle.size(),
        close: () => handle.close(),
        async datasync() {},
        async sync() {},
      }
    },
  }
}
