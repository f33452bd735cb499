/**
 * The PostgreSQL store of the session-manager, for several instances sharing one database
 * (`CARE_STORE=postgres`, `DATABASE_URL`): the session repository (the lifecycle's PostgreSQL adapter), migrations, the tamper-evidence
 * verifier, the `EventStore` view for replay and export, the one-shot JSONL import/export, and the
 * Merkle tree's leaves and feed (the same tree as the embedded log's; see docs/audit.md).
 * See docs/operations.md.
 */
export { type Checkpoint, lastCheckpoint, writeCheckpoint } from './checkpoints.js'
export { type CliIo, runPostgresCli } from './cli.js'
export { assertDurable, createPool, type PostgresConnectionOptions, UnsafeDatabaseError } from './database.js'
export { chainEvent, checkpointHash } from './event-chain.js'
export {
  exportToJsonlLog,
  importJsonlLog,
  type TransferDatabase,
  type TransferReport,
} from './jsonl-transfer.js'
export { MIGRATIONS, type Migration, type MigrationReport, migrate } from './migrations.js'
export { PostgresEventStore } from './postgres-event-store.js'
export {
  openPostgresSessions,
  type PostgresRepositoryOptions,
  type PostgresSessionRecord,
  PostgresSessionRepository,
} from './postgres-session-repository.js'
export { DEFAULT_SCHEMA, type SchemaNames, schemaNames } from './schema-names.js'
export { PostgresTreeFeed, PostgresTreeStorage, TREE_POLL_MS } from './tree-feed.js'
export { TreeHoleCheck, type TreeHoleStatus } from './tree-holes.js'
export { committedHigh, postgresTreeAuditSource, postgresTreeLines, TreeLineCursor } from './tree-lines.js'
export {
  loadPersistedTree,
  type PersistedTree,
  readTreeNodes,
  type StoredHead,
  TableNodeStore,
  type TreeHead,
  type TreeTableDb,
} from './tree-table.js'
export {
  type PostgresVerifyCounts,
  type PostgresVerifyProblem,
  type PostgresVerifyReport,
  type VerifyPostgresOptions,
  verifyPostgres,
} from './verify.js'
