import { type FileHandle, mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { WorkerEvent } from './worker-records.js'

/**
 * Thrown when an event could not be made durable. The caller must not answer 2xx; the worker
 * answers 503 `storage_unavailable` with `Retry-After`.
 *
 * @example
 * try { await log.append(event) } catch (err) { if (err instanceof StorageUnavailableError) retryLater() }
 */
export class StorageUnavailableError extends Error {
  constructor(cause: unknown) {
    super('the worker event could not be stored durably', { cause })
    this.name = 'StorageUnavailableError'
  }
}

/**
 * The worker's append-only JSONL record of what it did. `append` resolves only once the line is on
 * disk (fdatasync); appends are serialized, so lines never interleave.
 *
 * @example
 * await log.append({ ...event, session_id: req.sessionId })
 */
export interface WorkerEventLog {
  append(event: WorkerEvent): Promise<void>
  close(): Promise<void>
}

/**
 * Opens (creating directories) the JSONL file at `path` for appending. After a failed append it
 * truncates back to the last durable line where it can, and reopens the file on the next append,
 * so one bad write does not glue a partial line to the next record.
 *
 * @example
 * const log = await openWorkerEventLog('.care-data/worker/events.jsonl')
 */
export async function openWorkerEventLog(path: string): Promise<WorkerEventLog> {
  let handle: FileHandle | undefined = await openForAppend(path)
  let durableSize = (await handle.stat()).size
  let tail: Promise<unknown> = Promise.resolve()

  async function write(line: Buffer): Promise<void> {
    try {
      if (handle === undefined) {
        handle = await openForAppend(path)
        durableSize = (await handle.stat()).size
      }
      let written = 0
      while (written < line.length) written += (await handle.write(line, written)).bytesWritten
      await handle.datasync()
      durableSize += line.length
    } catch (err) {
      const broken = handle
      handle = undefined
      await broken?.truncate(durableSize).catch(() => {})
      await broken?.close().catch(() => {})
      throw new StorageUnavailableError(err)
    }
  }

  return {
    append(event) {
      const line = Buffer.from(`${JSON.stringify(event)}\n`, 'utf8')
      const appended = tail.then(() => write(line))
      tail = appended.catch(() => {})
      return appended
    },
    async close() {
      await tail
      await handle?.close()
      handle = undefined
    },
  }
}

async function openForAppend(path: string): Promise<FileHandle> {
  await mkdir(dirname(path), { recursive: true })
  return open(path, 'a')
}
