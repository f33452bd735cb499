import { createHash } from 'node:crypto'
import { join } from 'node:path'
import {
  finishInSlices,
  finishNow,
  type LogFileSystem,
  readWholeFile,
  type SlicedWork,
} from '@care/event-log'
import type { HotState } from './embedded-session-repository.js'

/** Subdirectory of the data dir holding the snapshots of the embedded repository's hot state. */
export const SNAPSHOTS_DIR = 'snapshots'
/** The `format` field of a snapshot's header line. */
export const SNAPSHOT_FORMAT = 'care-session-snapshot'
/** The snapshot layout this code writes and reads; another version is skipped (older snapshot or full replay). */
export const SNAPSHOT_VERSION = 1
/** How many snapshots are kept; older ones are removed after each new one is durable. */
export const SNAPSHOTS_KEPT = 3

const SNAPSHOT_FILE = /^snapshot-(\d{20})\.json$/
const TEMP_MARK = '.tmp-'

/**
 * One snapshot: the repository's hot state exactly as of `point` (the log position after the newest
 * event it includes; `seq` is that event's sequence number), and the transparency tree's size and root
 * hash (hex) at that point when the tree is kept.
 *
 * @example
 * const snapshot: SessionSnapshot<LogPosition> = { point: log.resumePoint, createdAt, hot }
 */
export interface SessionSnapshot<Ref = unknown, Point extends { seq: number } = { seq: number }> {
  point: Point
  createdAt: string
  tree?: { size: number; root: string }
  hot: HotState<Ref>
}

/**
 * A snapshot file found on disk: its contents, or why it cannot be used.
 *
 * @example
 * for await (const found of files.newestFirst()) if ('snapshot' in found) return found.snapshot
 */
export type SnapshotCandidate<Ref, Point extends { seq: number }> =
  | { path: string; seq: number; snapshot: SessionSnapshot<Ref, Point> }
  | { path: string; seq: number; problem: string }

/**
 * The snapshot files under `<dataDir>/snapshots/` (layout in docs/log-format.md): `snapshot-<seq>.json`,
 * a header line `{"format","version","body_bytes","body_sha256"}` then the JSON body. Written atomically
 * (temporary file, fdatasync, rename, fsync of the directory), so a crash leaves the old set plus at most
 * a temporary file, removed at the next write. Every file system call goes through `fs`, so fault tests
 * can fail or "power off" any of them.
 *
 * @example
 * const files = new SnapshotFiles(nodeFileSystem, dataDir)
 * await files.write(snapshot)
 * for await (const found of files.newestFirst()) console.log(found.path)
 */
export class SnapshotFiles<Ref = unknown, Point extends { seq: number } = { seq: number }> {
  readonly dir: string
  private dirDurable = false

  constructor(
    private readonly fs: LogFileSystem,
    private readonly dataDir: string,
  ) {
    this.dir = join(dataDir, SNAPSHOTS_DIR)
  }

  /** Writes `snapshot` durably, then removes all but the newest {@link SNAPSHOTS_KEPT} and stray temp files. */
  async write(snapshot: SessionSnapshot<Ref, Point>): Promise<string> {
    if (!this.dirDurable) {
      // The directory's own entry must survive a power loss too, or its snapshots vanish with it.
      await this.fs.mkdir(this.dir)
      await this.fs.syncDir(this.dataDir)
      this.dirDurable = true
    }
    const path = join(this.dir, snapshotFileName(snapshot.point.seq))
    const temp = `${path}${TEMP_MARK}${process.pid}-${Date.now()}`
    const bytes = await encodeSnapshotInSlices(snapshot)
    const file = await this.fs.open(temp, 'createExclusive')
    try {
      try {
        let done = 0
        while (done < bytes.length) {
          const written = await file.write(bytes, done, bytes.length - done, done)
          if (written <= 0) throw Object.assign(new Error('snapshot write made no progress'), { code: 'EIO' })
          done += written
        }
        await file.datasync()
      } finally {
        await file.close()
      }
      await this.fs.rename(temp, path)
    } catch (error) {
      // Give the space back (a full disk is the usual cause); a leftover is removed by the next write.
      await this.fs.unlink(temp).catch(() => {})
      throw error
    }
    await this.fs.syncDir(this.dir)
    await this.prune()
    return path
  }

  /** The snapshot files, newest (highest seq) first, each read and checked (format, version, checksum). */
  async *newestFirst(): AsyncIterable<SnapshotCandidate<Ref, Point>> {
    for (const { path, seq } of await this.list()) {
      let bytes: Buffer
      try {
        const read = await readWholeFile(this.fs, path)
        if (read === undefined) throw Object.assign(new Error(`${path} is gone`), { code: 'ENOENT' })
        bytes = read
      } catch (err) {
        yield { path, seq, problem: `unreadable (${(err as { code?: string }).code ?? String(err)})` }
        continue
      }
      const decoded = decodeSnapshot<Ref, Point>(bytes)
      if (typeof decoded === 'string') yield { path, seq, problem: decoded }
      else if (decoded.point.seq !== seq) yield { path, seq, problem: `names seq ${decoded.point.seq}` }
      else yield { path, seq, snapshot: decoded }
    }
  }

  /** Removes all but the newest {@link SNAPSHOTS_KEPT} snapshots and any temporary file. */
  async prune(): Promise<void> {
    const names = await this.names()
    let removed = false
    for (const name of names) {
      if (name.includes(TEMP_MARK)) {
        await this.fs.unlink(join(this.dir, name))
        removed = true
      }
    }
    for (const { path } of (await this.list()).slice(SNAPSHOTS_KEPT)) {
      await this.fs.unlink(path)
      removed = true
    }
    if (removed) await this.fs.syncDir(this.dir)
  }

  private async names(): Promise<string[]> {
    try {
      return await this.fs.readdir(this.dir)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return []
      throw err
    }
  }

  private async list(): Promise<{ path: string; seq: number }[]> {
    return (await this.names())
      .map((name) => ({ name, match: SNAPSHOT_FILE.exec(name) }))
      .filter((f) => f.match !== null)
      .map((f) => ({ path: join(this.dir, f.name), seq: Number(f.match![1]) }))
      .sort((a, b) => b.seq - a.seq)
  }
}

/** The file name of the snapshot after record `seq`: the seq zero-padded to 20 digits. */
export function snapshotFileName(seq: number): string {
  return `snapshot-${String(seq).padStart(20, '0')}.json`
}

/**
 * The bytes of a snapshot file: header line (format, version, body length and SHA-256), body JSON, newline.
 *
 * @example
 * const bytes = encodeSnapshot({ point: { seq: 0 }, createdAt: new Date().toISOString(), hot })
 */
export function encodeSnapshot(snapshot: SessionSnapshot<unknown, { seq: number }>): Buffer {
  return finishNow(snapshotEncoding(snapshot))
}

/**
 * The same bytes as {@link encodeSnapshot}, made in slices of about `sliceMs` with the event loop free
 * in between: 100,000 open sessions are ~45 MB of JSON, half a second in one piece. The snapshot must
 * not change meanwhile (the repository's capture copies its arrays, and session states are replaced,
 * never changed in place).
 *
 * @example
 * const bytes = await encodeSnapshotInSlices({ point, createdAt: new Date().toISOString(), hot })
 */
export function encodeSnapshotInSlices(
  snapshot: SessionSnapshot<unknown, { seq: number }>,
  sliceMs = 8,
): Promise<Buffer> {
  return finishInSlices(snapshotEncoding(snapshot), sliceMs)
}

/** Array items stringified per step (a step is then well under a millisecond). */
const ITEMS_PER_STEP = 512

/**
 * The encoder: the body is exactly `JSON.stringify` of the whole snapshot, built from the hot state's
 * members one by one and its arrays a few hundred items at a time, hashed as it goes; it yields
 * between pieces.
 */
function* snapshotEncoding(snapshot: SessionSnapshot<unknown, { seq: number }>): SlicedWork<Buffer> {
  const pieces: Buffer[] = []
  const hash = createHash('sha256')
  const put = (text: string) => {
    const piece = Buffer.from(text, 'utf8')
    pieces.push(piece)
    hash.update(piece)
  }
  put(`{"point":${JSON.stringify(snapshot.point)},"created_at":${JSON.stringify(snapshot.createdAt)}`)
  if (snapshot.tree) put(`,"tree":${JSON.stringify(snapshot.tree)}`)
  put(',"hot":{')
  let first = true
  for (const [key, value] of Object.entries(snapshot.hot)) {
    const json = Array.isArray(value) ? undefined : JSON.stringify(value)
    if (!Array.isArray(value) && json === undefined) continue // as JSON.stringify skips it
    put(`${first ? '' : ','}${JSON.stringify(key)}:`)
    first = false
    if (!Array.isArray(value)) {
      put(json!)
      continue
    }
    put('[')
    for (let at = 0; at < value.length; at += ITEMS_PER_STEP) {
      const items = JSON.stringify(value.slice(at, at + ITEMS_PER_STEP))
      put(`${at === 0 ? '' : ','}${items.slice(1, -1)}`)
      yield
    }
    put(']')
  }
  put('}}')
  const body = Buffer.concat(pieces)
  const header = JSON.stringify({
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    body_bytes: body.length,
    body_sha256: hash.digest('hex'),
  })
  return Buffer.concat([Buffer.from(`${header}\n`, 'utf8'), body, Buffer.from('\n', 'utf8')])
}

/**
 * A snapshot read back from its bytes, or why it cannot be used (wrong format or version, truncated,
 * checksum mismatch, malformed body).
 *
 * @example
 * const decoded = decodeSnapshot(bytes)
 * if (typeof decoded === 'string') logger.warn({ problem: decoded }, 'snapshot skipped')
 */
export function decodeSnapshot<Ref, Point extends { seq: number }>(
  bytes: Buffer,
): SessionSnapshot<Ref, Point> | string {
  const newline = bytes.indexOf(0x0a)
  if (newline < 0) return 'no header line'
  let header: { format?: unknown; version?: unknown; body_bytes?: unknown; body_sha256?: unknown }
  try {
    header = JSON.parse(bytes.subarray(0, newline).toString('utf8'))
  } catch {
    return 'header is not JSON'
  }
  if (header.format !== SNAPSHOT_FORMAT) return `format is ${String(header.format)}, not ${SNAPSHOT_FORMAT}`
  if (header.version !== SNAPSHOT_VERSION)
    return `version ${String(header.version)} is not ${SNAPSHOT_VERSION}`
  if (typeof header.body_bytes !== 'number') return 'header has no body_bytes'
  const body = bytes.subarray(newline + 1, newline + 1 + header.body_bytes)
  if (body.length !== header.body_bytes || bytes.length !== newline + 2 + header.body_bytes) {
    return `truncated or padded: ${bytes.length - newline - 1} body bytes, header says ${header.body_bytes} + newline`
  }
  if (createHash('sha256').update(body).digest('hex') !== header.body_sha256) return 'body checksum mismatch'
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      point: Point
      created_at: string
      tree?: { size: number; root: string }
      hot: HotState<Ref>
    }
    if (typeof parsed.point?.seq !== 'number' || !Array.isArray(parsed.hot?.sessions))
      return 'body is malformed'
    return {
      point: parsed.point,
      createdAt: parsed.created_at,
      ...(parsed.tree ? { tree: parsed.tree } : {}),
      hot: parsed.hot,
    }
  } catch {
    return 'body is not JSON'
  }
}
