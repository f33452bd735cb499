/**
 * A storage operation failed, so the event it carried is NOT durable. `code` is the errno when the
 * OS gave one (`ENOSPC`, `EIO`, `EROFS`, `EDQUOT`...), `FSYNC_FAILED` once an fdatasync has failed
 * (the log stays failed until reopened), `LOG_FAILED` when the log could not restore a clean state,
 * `LOG_CLOSED` after `close()`.
 *
 * @example
 * try {
 *   await log.append(event)
 * } catch (err) {
 *   if (err instanceof StorageError && err.code === 'ENOSPC') return errorResponse('SERVICE_UNAVAILABLE')
 *   throw err
 * }
 */
export class StorageError extends Error {
  override readonly name = 'StorageError'
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * The log on disk does not verify: a line that does not parse, a broken hash chain, a gap in `seq`.
 * `file` is the segment's file name (e.g. `events-000002.jsonl`), `line` is 1-based within that file.
 *
 * @example
 * try {
 *   await EventLog.open({ dir })
 * } catch (err) {
 *   if (err instanceof LogCorruptError) console.error(`${err.file}:${err.line}: ${err.reason}`)
 * }
 */
export class LogCorruptError extends Error {
  override readonly name = 'LogCorruptError'
  readonly file: string
  readonly line: number
  readonly reason: string

  constructor(file: string, line: number, reason: string, path?: string) {
    super(
      `event log is corrupt at ${path ?? file} line ${line}: ${reason} ` +
        '(open with repair: true to cut the log there; the cut bytes are kept in a .broken file)',
    )
    this.file = file
    this.line = line
    this.reason = reason
  }
}

/**
 * Another live process holds the data directory's `LOCK` file; two writers on one log would
 * interleave and break the hash chain, so the second one refuses to start.
 *
 * @example
 * try {
 *   await EventLog.open({ dir })
 * } catch (err) {
 *   if (err instanceof LogLockedError) console.error(`already running as pid ${err.pid}`)
 * }
 */
export class LogLockedError extends Error {
  override readonly name = 'LogLockedError'
  readonly pid: number | undefined
  readonly hostname: string | undefined

  constructor(lockPath: string, pid: number | undefined, hostname: string | undefined, detail: string) {
    super(`event log ${lockPath} is locked: ${detail}`)
    this.pid = pid
    this.hostname = hostname
  }
}

/**
 * `OpenLogOptions.resumeAfter` does not name a record of this log: its segment is missing, no whole line
 * ends at its offset, or that line's re-computed hash, `seq` or `hash` differ from the point (e.g. a
 * snapshot taken from another data directory, or a log cut by `repair` below the point). Nothing was
 * replayed; open again with an older point or without one (a full replay).
 *
 * @example
 * try {
 *   await EventLog.open({ dir, resumeAfter: snapshot.point })
 * } catch (err) {
 *   if (err instanceof ResumeMismatchError) return EventLog.open({ dir }) // full replay
 *   throw err
 * }
 */
export class ResumeMismatchError extends Error {
  override readonly name = 'ResumeMismatchError'
  readonly reason: string

  constructor(point: { seq: number; file: number; offset: number }, reason: string) {
    super(
      `resume point seq ${point.seq} (segment ${point.file} offset ${point.offset}) is not a record of this log: ${reason}`,
    )
    this.reason = reason
  }
}
