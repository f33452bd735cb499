// Retention: moving sealed segments older than a date out of the events directory, with a manifest that
// keeps the chain verifiable across the boundary (format in docs/log-format.md).
import { createHash } from 'node:crypto'
import { dirname, join, resolve } from 'node:path'
import { type ChainedRecord, GENESIS_HASH } from './chain.js'
import { LogCorruptError } from './errors.js'
import {
  errnoOf,
  type LogFileSystem,
  nodeFileSystem,
  readFully,
  readWholeFile,
  writeFully,
} from './file-system.js'
import { acquireLock } from './lock.js'
import { digestPathOf, passSegment, readDigest } from './segment-digest.js'
import { indexPathOf, writeFileAtomically } from './segment-index.js'
import { eventsDirOf, listSegments, type Segment, segmentName, segmentOf } from './segments.js'

export const ARCHIVE_MANIFEST_FILE = 'archive-manifest.json'
export const ARCHIVE_MANIFEST_FORMAT = 'care-archive-manifest/1'

/** One archived segment as the manifest records it. */
export interface ArchivedSegment {
  name: string
  bytes: number
  sha256: string
  lines: number
  first_seq: number
  first_prev_hash: string
  last_seq: number
  last_hash: string
  /** Epoch ms range of its records (by `recordTime`). */
  time: { min: number; max: number }
}

/**
 * `<dataDir>/events/archive-manifest.json`: which segments were archived where. The segment after the
 * last archived one links (its first `prev_hash`) to `through.hash`.
 *
 * @example
 * const manifest = await readArchiveManifest('/var/lib/care')
 * if (manifest) console.log(`archived through seq ${manifest.through.seq} to ${manifest.archive_dir}`)
 */
export interface ArchiveManifest {
  format: string
  archive_dir: string
  /** The newest archived record, its segment and the newest record time archived. */
  through: { file: number; seq: number; hash: string; time_max: number }
  segments: ArchivedSegment[]
}

/**
 * Options of `archiveSegments`.
 *
 * @example
 * const options: ArchiveOptions = { before: new Date('2026-01-01'), to: '/mnt/cold/care', recordTime }
 */
export interface ArchiveOptions {
  /** Archive sealed segments whose records are all older than this (Date or epoch ms). */
  before: Date | number
  /** Directory the segments and their sidecars are moved to (created if missing). */
  to: string
  /**
   * Epoch ms of a record. Needed when a segment has no digest with a time range (e.g. the log was
   * written without `recordTime`); a segment whose time is unknown stops the archiving there.
   */
  recordTime?: (record: ChainedRecord) => number
  fs?: LogFileSystem
  logger?: { info(o: object, m: string): void; warn(o: object, m: string): void }
}

/**
 * What `archiveSegments` did: the segment files it moved now, and why it stopped where it did.
 *
 * @example
 * const { archived, stoppedAt } = await archiveSegments(dir, { before, to })
 */
export interface ArchiveReport {
  archived: string[]
  /** Segments a previous, interrupted run had listed and this run finished moving. */
  finished: string[]
  /** The first sealed segment kept, and why (too new, unknown time, the active segment). */
  stoppedAt?: { file: string; reason: string }
  manifest?: ArchiveManifest
}

/**
 * Moves the sealed segments whose records are all older than `before` (oldest first, stopping at the
 * first that is not) with their sidecar files to `to`, and records them in
 * `<dataDir>/events/archive-manifest.json` (written first, atomically; then each file is copied, fsynced,
 * renamed into place and only then removed from the log), so a crash at any point leaves a log that opens
 * and verifies, and a rerun finishes the job. Each segment is re-hashed and chain-checked before it
 * is archived (LogCorruptError if it is damaged). Takes the data directory's LOCK: run it while the
 * service is stopped (`LogLockedError` otherwise). Choose `before` older than the longest a session can
 * stay open plus the retry window: a session whose start is archived cannot be replayed.
 *
 * @example
 * const report = await archiveSegments('/var/lib/care', { before: Date.now() - 365 * 86_400_000, to: '/mnt/cold/care' })
 * console.log(`archived ${report.archived.length} segments`)
 */
export async function archiveSegments(dataDir: string, options: ArchiveOptions): Promise<ArchiveReport> {
  const fs = options.fs ?? nodeFileSystem
  const before = typeof options.before === 'number' ? options.before : options.before.getTime()
  if (!Number.isFinite(before)) throw new RangeError('archiveSegments: before must be a valid date')
  const eventsDir = eventsDirOf(dataDir)
  const to = resolve(options.to)
  await fs.mkdir(to)
  // The archive directory's own entry must survive a power loss before anything is moved into it.
  await fs.syncDir(dirname(to))
  const lock = await acquireLock(fs, dataDir, options.logger)
  try {
    const existing = await readArchiveManifest(dataDir, { fs })
    if (existing && resolve(existing.archive_dir) !== to) {
      throw new TypeError(`archiveSegments: this log archives to ${existing.archive_dir}, not ${to}`)
    }
    const report: ArchiveReport = { archived: [], finished: [] }
    const present = new Set((await listSegments(fs, eventsDir)).map((s) => s.name))
    // Finish what an interrupted run listed but did not move.
    for (const entry of existing?.segments ?? []) {
      if (!present.has(entry.name)) continue
      await moveToArchive(fs, eventsDir, to, entry)
      report.finished.push(entry.name)
    }
    const segments = await listSegments(fs, eventsDir)
    const sealed = segments.slice(0, -1)
    let previous = existing ? existing.through : { seq: 0, hash: GENESIS_HASH }
    const added: ArchivedSegment[] = []
    let addedFile = 0
    for (const segment of sealed) {
      const time = await timeOf(fs, eventsDir, segment, options.recordTime)
      if (time === undefined) {
        report.stoppedAt = {
          file: segment.name,
          reason: 'no time range (no digest with one; pass recordTime)',
        }
        break
      }
      if (time.max >= before) {
        report.stoppedAt = {
          file: segment.name,
          reason: `has records from ${new Date(time.max).toISOString()}`,
        }
        break
      }
      const pass = await passSegment(fs, segment, { verify: true })
      if (pass.problem)
        throw new LogCorruptError(segment.name, pass.problem.line, pass.problem.reason, segment.path)
      const { digest } = pass
      if (digest.first.seq !== previous.seq + 1 || digest.first.prev_hash !== previous.hash) {
        throw new LogCorruptError(
          segment.name,
          1,
          'first line does not link to the archived segment before it',
          segment.path,
        )
      }
      added.push({
        name: segment.name,
        bytes: digest.bytes,
        sha256: digest.sha256,
        lines: digest.lines,
        first_seq: digest.first.seq,
        first_prev_hash: digest.first.prev_hash,
        last_seq: digest.last.seq,
        last_hash: digest.last.hash,
        time,
      })
      addedFile = segment.index
      previous = digest.last
    }
    if (!report.stoppedAt && segments.length > 0) {
      report.stoppedAt = { file: segments.at(-1)!.name, reason: 'the active segment is never archived' }
    }
    if (added.length === 0) {
      if (existing) report.manifest = existing
      return report
    }
    const last = added.at(-1)!
    const manifest: ArchiveManifest = {
      format: ARCHIVE_MANIFEST_FORMAT,
      archive_dir: to,
      through: {
        file: addedFile,
        seq: last.last_seq,
        hash: last.last_hash,
        time_max: Math.max(
          existing?.through.time_max ?? Number.NEGATIVE_INFINITY,
          ...added.map((s) => s.time.max),
        ),
      },
      segments: [...(existing?.segments ?? []), ...added],
    }
    // The manifest first: from here on the log's start is defined by it whether or not the moves happen.
    await writeFileAtomically(
      fs,
      eventsDir,
      join(eventsDir, ARCHIVE_MANIFEST_FILE),
      Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`),
    )
    for (const entry of added) {
      await moveToArchive(fs, eventsDir, to, entry)
      report.archived.push(entry.name)
      options.logger?.info({ file: entry.name, to }, 'event log: archived a segment')
    }
    report.manifest = manifest
    return report
  } finally {
    await lock.release()
  }
}

/** The time range of a sealed segment: from its digest, else by reading it with `recordTime`. */
async function timeOf(
  fs: LogFileSystem,
  eventsDir: string,
  segment: Segment,
  recordTime: ArchiveOptions['recordTime'],
): Promise<{ min: number; max: number } | undefined> {
  const digest = await readDigest(fs, eventsDir, segment)
  if (typeof digest === 'object' && digest.time) return digest.time
  if (!recordTime) return undefined
  const pass = await passSegment(fs, segment, { verify: false, recordTime })
  return pass.digest.time ?? undefined
}

/**
 * Copies the segment (checked against the manifest's sha256) and its sidecars into `to` (temp, fsync,
 * rename, fsync dir), then removes them from the log: sidecars first, the segment last.
 */
async function moveToArchive(
  fs: LogFileSystem,
  eventsDir: string,
  to: string,
  entry: ArchivedSegment,
): Promise<void> {
  const segment = segmentOf(eventsDir, Number(/(\d+)/.exec(entry.name)![1]))
  const sidecars = [indexPathOf(eventsDir, segment), digestPathOf(eventsDir, segment)]
  const sha = await copyDurably(fs, segment.path, join(to, segment.name))
  if (sha !== entry.sha256) {
    throw new LogCorruptError(
      segment.name,
      0,
      'segment bytes differ from the archive manifest; not archived',
      segment.path,
    )
  }
  for (const path of sidecars) {
    const name = path.slice(eventsDir.length + 1)
    try {
      await copyDurably(fs, path, join(to, name))
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err
    }
  }
  await fs.syncDir(to)
  for (const path of [...sidecars, segment.path]) {
    try {
      await fs.unlink(path)
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err
    }
  }
  await fs.syncDir(eventsDir)
}

const COPY_CHUNK = 4 * 1024 * 1024

/** Copies `from` to `target` via `target.tmp` (fsynced, renamed); returns the sha256 of the bytes. */
async function copyDurably(fs: LogFileSystem, from: string, target: string): Promise<string> {
  const source = await fs.open(from, 'read')
  const sha = createHash('sha256')
  try {
    const temp = `${target}.tmp`
    const out = await fs.open(temp, 'write')
    try {
      await out.truncate(0)
      const size = await source.size()
      for (let at = 0; at < size; at += COPY_CHUNK) {
        const chunk = await readFully(source, Math.min(COPY_CHUNK, size - at), at)
        sha.update(chunk)
        await writeFully(out, chunk, at)
      }
      await out.sync()
    } finally {
      await out.close()
    }
    await fs.rename(temp, target)
  } finally {
    await source.close()
  }
  return sha.digest('hex')
}

/**
 * Reads `<dataDir>/events/archive-manifest.json`; undefined when nothing was ever archived. Throws
 * LogCorruptError when it exists but cannot be used (the log's start would be unknown).
 *
 * @example
 * const manifest = await readArchiveManifest(dir)
 */
export async function readArchiveManifest(
  dataDir: string,
  options: { fs?: LogFileSystem } = {},
): Promise<ArchiveManifest | undefined> {
  return manifestIn(options.fs ?? nodeFileSystem, eventsDirOf(dataDir))
}

/** `readArchiveManifest` given the events directory. */
export async function manifestIn(fs: LogFileSystem, eventsDir: string): Promise<ArchiveManifest | undefined> {
  const path = join(eventsDir, ARCHIVE_MANIFEST_FILE)
  const bytes = await readWholeFile(fs, path)
  if (bytes === undefined) return undefined
  const text = bytes.toString('utf8')
  try {
    const manifest = JSON.parse(text) as ArchiveManifest
    if (manifest.format === ARCHIVE_MANIFEST_FORMAT && Array.isArray(manifest.segments) && manifest.through) {
      return manifest
    }
  } catch {
    // reported below
  }
  throw new LogCorruptError(ARCHIVE_MANIFEST_FILE, 1, 'archive manifest is not readable', path)
}

/**
 * Where the chain of the segments kept in the events directory starts: seq 0 and GENESIS_HASH when they
 * start at segment 1, else the last record of the archived segment before the first kept one (from the
 * manifest). Undefined when that segment is neither kept nor in the manifest (a missing segment).
 */
export function chainStartOf(
  firstKept: number,
  manifest: ArchiveManifest | undefined,
): { seq: number; hash: string } | undefined {
  if (firstKept <= 1) return { seq: 0, hash: GENESIS_HASH }
  const entry = manifest?.segments.find((s) => s.name === segmentName(firstKept - 1))
  return entry ? { seq: entry.last_seq, hash: entry.last_hash } : undefined
}

/**
 * The segments in the events directory and where their chain starts: at segment 1 with seq 0, or after
 * the archived segment named by the manifest. `first` is the segment number the list must start at
 * (readers report a missing segment when it does not).
 */
export async function keptSegments(
  fs: LogFileSystem,
  eventsDir: string,
): Promise<{ segments: Segment[]; first: number; start: { seq: number; hash: string } }> {
  const segments = await listSegments(fs, eventsDir)
  const present = segments[0]?.index ?? 1
  const start = present > 1 ? chainStartOf(present, await manifestIn(fs, eventsDir)) : undefined
  return start
    ? { segments, first: present, start }
    : { segments, first: 1, start: { seq: 0, hash: GENESIS_HASH } }
}
