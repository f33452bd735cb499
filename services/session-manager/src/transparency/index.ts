/**
 * The session log as a transparency log: a Merkle tree over the log lines, signed C2SP checkpoints,
 * proofs over HTTP, proven exports and their offline verification. See docs/audit.md.
 */
export { runTransparencyCommand, TRANSPARENCY_USAGE } from './cli.js'
export { loadTransparencySettings, TransparencyConfigError, type TransparencySettings } from './config.js'
export { logLines } from './log-lines.js'
export {
  buildProvenExport,
  loadVerifierKeys,
  type ProvenExport,
  ProvenExportError,
  verifyProvenExport,
} from './proven-export.js'
export { registerTransparencyRoutes } from './routes.js'
export {
  CHECKPOINTS_DIR,
  checkpointFileName,
  listCheckpointFiles,
  TREE_DIR,
  TransparencyLog,
  type TransparencyLogOptions,
} from './transparency-log.js'
export { type CheckpointVerifyReport, verifyAgainstCheckpoints } from './verify-checkpoints.js'
