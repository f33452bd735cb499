import { constants } from 'node:fs'
import * as fsp from 'node:fs/promises'

/**
 * How a file is opened: `read` (must exist), `write` (read/write, created if missing, never truncated),
 * `createExclusive` (read/write, fails with EEXIST if the file exists).
 */
export type OpenMode = 'read' | 'write' | 'createExclusive'

/** An open file. Every read, write and sync of the log goes through one of these. */
export interface LogFileHandle {
  /** Reads up to `length` bytes at `position`; resolves with the number of bytes read (0 at EOF). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>
  /** Writes at `position` (never appends implicitly); may write fewer bytes than asked, like pwrite(2). */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>
  datasync(): Promise<void>
  sync(): Promise<void>
  truncate(length: number): Promise<void>
  size(): Promise<number>
  close(): Promise<void>
}

/**
 * The file layer under the event log, injectable so tests can make any call fail (see
 * `test-support/faulty-file-system.ts`) and a later power-loss simulator can drop unsynced writes.
 * `nodeFileSystem` is the real one.
 *
 * @example
 * const { log } = await EventLog.open({ dir, fs: nodeFileSystem })
 */
export interface LogFileSystem {
  open(path: string, mode: OpenMode): Promise<LogFileHandle>
  /** Creates the directory and its parents; no error if it exists. */
  mkdir(path: string): Promise<void>
  readdir(path: string): Promise<string[]>
  /** Throws an error with code ENOENT when missing. */
  stat(path: string): Promise<{ size: number; mtimeMs: number }>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
  /** fsync(2) on a directory, making created, renamed and removed entries durable. */
  syncDir(path: string): Promise<void>
}

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  write: constants.O_RDWR | constants.O_CREAT,
  createExclusive: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
}

class NodeFileHandle implements LogFileHandle {
  readonly #handle: fsp.FileHandle

  constructor(handle: fsp.FileHandle) {
    this.#handle = handle
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.#handle.read(buffer, offset, length, position)).bytesRead
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.#handle.write(buffer, offset, length, position)).bytesWritten
  }

  datasync(): Promise<void> {
    return this.#handle.datasync()
  }

  sync(): Promise<void> {
    return this.#handle.sync()
  }

  truncate(length: number): Promise<void> {
    return this.#handle.truncate(length)
  }

  async size(): Promise<number> {
    return (await this.#handle.stat()).size
  }

  close(): Promise<void> {
    return this.#handle.close()
  }
}

/**
 * The real file system (node:fs/promises), used when `OpenLogOptions.fs` is not given.
 *
 * @example
 * const handle = await nodeFileSystem.open('/tmp/x.jsonl', 'write')
 */
export const nodeFileSystem: LogFileSystem = {
  async open(path, mode) {
    return new NodeFileHandle(await fsp.open(path, OPEN_FLAGS[mode], 0o644))
  },
  async mkdir(path) {
    await fsp.mkdir(path, { recursive: true })
  },
  readdir(path) {
    return fsp.readdir(path)
  },
  async stat(path) {
    const { size, mtimeMs } = await fsp.stat(path)
    return { size, mtimeMs }
  },
  rename(from, to) {
    return fsp.rename(from, to)
  },
  unlink(path) {
    return fsp.unlink(path)
  },
  async syncDir(path) {
    const handle = await fsp.open(path, constants.O_RDONLY)
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
}

/** Writes all of `buffer` at `position`, looping over short writes. */
export async function writeFully(handle: LogFileHandle, buffer: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < buffer.length) {
    const written = await handle.write(buffer, done, buffer.length - done, position + done)
    if (written <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
    done += written
  }
}

/** Reads exactly `length` bytes at `position` (fewer only at end of file). */
export async function readFully(handle: LogFileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length)
  let done = 0
  while (done < length) {
    const read = await handle.read(buffer, done, length - done, position + done)
    if (read === 0) break
    done += read
  }
  return done === length ? buffer : buffer.subarray(0, done)
}

/**
 * A whole (small) file read through `fs` — at most `maxBytes` of it when given — or undefined when it
 * does not exist. For the log's JSON side files (checkpoint, lock, digests, manifests) and its users' own.
 *
 * @example
 * const text = (await readWholeFile(fs, join(dir, 'checkpoint.json'), 4096))?.toString('utf8')
 */
export async function readWholeFile(
  fs: LogFileSystem,
  path: string,
  maxBytes?: number,
): Promise<Buffer | undefined> {
  let handle: LogFileHandle
  try {
    handle = await fs.open(path, 'read')
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined
    throw err
  }
  try {
    const size = await handle.size()
    return await readFully(handle, maxBytes === undefined ? size : Math.min(size, maxBytes), 0)
  } finally {
    await handle.close()
  }
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}
