/**
 * `@care/event-log`: an append-only, hash-chained JSONL log of records of any JSON object type, in
 * numbered segment files under `<dir>/events`. `EventLog` appends (group commit, fdatasync before the
 * promise resolves), recovers on open (lock, torn-tail cut, chain check, checkpoints) and reads back by
 * position; `readLog` / `scanLog` stream a live log without its lock; `verifyLog` audits a whole log,
 * with record-level rules (`VerifyRules`, `checkRecord`) supplied by the caller.
 * Fault-injecting file systems for tests are in `@care/event-log/testing`.
 *
 * @example
 * import { EventLog, verifyLog } from '@care/event-log'
 * const { log } = await EventLog.open<{ kind: string; at: string }>({ dir: '/var/lib/app' })
 * await log.append({ kind: 'created', at: new Date().toISOString() })
 * await log.close()
 * const report = await verifyLog('/var/lib/app')
 */
export {
  type ArchivedSegment,
  type ArchiveManifest,
  type ArchiveOptions,
  type ArchiveReport,
  archiveSegments,
  readArchiveManifest,
} from './archive.js'
export { type CanonicalJsonOptions, canonicalJson } from './canonical-json.js'
export {
  type ChainedRecord,
  type ChainFields,
  decodeLine,
  encodeRecord,
  GENESIS_HASH,
  withoutChainFields,
} from './chain.js'
export { LogCorruptError, LogLockedError, ResumeMismatchError, StorageError } from './errors.js'
export {
  type AppendResult,
  DEFAULT_MAX_FILE_BYTES,
  EventLog,
  type LogLogger,
  type LogObserver,
  type LookupOptions,
  type OpenLogOptions,
} from './event-log.js'
export {
  type LogFileHandle,
  type LogFileSystem,
  nodeFileSystem,
  type OpenMode,
  readWholeFile,
} from './file-system.js'
export { readLog } from './read-log.js'
export type { LogHead, LogPosition, LogResumePoint, RecoveryCut, RecoveryReport } from './recovery.js'
export { type LineLocation, type ScanLogOptions, scanLog, scanLogLines } from './scan-log.js'
export type { ScrubOptions, ScrubStatus } from './scrub.js'
export { eventsDirOf, segmentName } from './segments.js'
export { finishInSlices, finishNow, type SlicedWork } from './sliced-work.js'
export {
  type VerifyCounts,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
  type VerifyRules,
  verifyLog,
} from './verify.js'
