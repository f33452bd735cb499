/**
 * The append-only, hash-chained JSONL event log: where a session lifecycle event reaches disk.
 * See `EventLog` for writing, `readLog` for streaming replay/export and `verifyLog` for audits.
 */
export { canonicalJson } from './canonical-json.js'
export { type ChainedRecord, GENESIS_HASH, withoutChainFields } from './chain.js'
export { LogCorruptError, LogLockedError, StorageError } from './errors.js'
export {
  type AppendResult,
  EventLog,
  type LogLogger,
  type LogObserver,
  type OpenLogOptions,
} from './event-log.js'
export { type LogFileHandle, type LogFileSystem, nodeFileSystem, type OpenMode } from './file-system.js'
export { readLog } from './read-log.js'
export type { LogHead, LogPosition, RecoveryCut, RecoveryReport } from './recovery.js'
export {
  type VerifyCounts,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
  verifyLog,
} from './verify.js'
