/**
 * Audit of the session log, shared by the `care-sessions` CLI and the HTTP API: verification
 * (`verifyDataDir`), grouped and filtered export with a manifest (`runExport`), pseudonymisation,
 * replay and the merged session timeline (`sessionEvents`, `readWorkerRecords`, `mergeTimeline`).
 */
export {
  type AuditSource,
  isPositioned,
  type LineReader,
  logAuditSource,
  type PositionedAuditSource,
  storeAuditSource,
} from './audit-source.js'
export {
  type ExportedRecordRef,
  type ExportManifest,
  type ExportOptions,
  type ExportProgress,
  type ExportProofLine,
  type ExportSink,
  type ExportTransparency,
  type RecordProver,
  runExport,
} from './export.js'
export {
  END_REASONS,
  type EndReason,
  type ExportFilters,
  parseExportFilters,
  SESSION_ID_PATTERN,
} from './export-filters.js'
export {
  createPseudonymizer,
  IDENTITY_FIELDS,
  loadPseudonymKey,
  PSEUDONYM_PREFIX,
  type Pseudonymizer,
} from './pseudonymize.js'
export { checkRecord as checkLifecycleSchema } from './schema-record-check.js'
export {
  formatTimelineEntry,
  mergeTimeline,
  readWorkerRecords,
  sessionEvents,
  type TimelineEntry,
  WorkerLogError,
} from './timeline.js'
export { type DataDirVerifyOptions, verifyDataDir } from './verify.js'
