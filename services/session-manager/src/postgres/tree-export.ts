import { TreeProofs } from '@care/tlog'
import type { AuditSource } from '../audit/audit-source.js'
import type { RecordProver } from '../audit/export.js'
import { checkpointProver, TreeFilesError } from '../transparency/export-proofs.js'
import { readNewestCheckpoint } from '../transparency/newest-checkpoint.js'
import { createToolPool } from './database.js'
import { unavailable } from './pg-errors.js'
import { schemaNames } from './schema-names.js'
import { postgresTreeAuditSource } from './tree-lines.js'
import { readTreeNodes } from './tree-table.js'

/**
 * What the offline `care-sessions export --database-url` reads: the committed rows as their tree lines
 * (`postgresTreeAuditSource`, the bytes the leaves hash) and a prover against the newest checkpoint in
 * `checkpointsDir` (the service instances' `<CARE_DATA_DIR>/checkpoints`) whose size the persisted
 * tree reaches (`max(size)` of `tree_heads`; a newer one's hashes are not written yet), with proofs
 * from the `tree_nodes` table (one query per batch of records), each checked against the checkpoint's
 * root before it is written: a table that does not match fails the export (`TreeFilesError`)
 * instead of writing a bad proof. Read only; call `close` when done.
 *
 * @example
 * const pg = openPostgresExport({ url, checkpointsDir: '/var/lib/care/checkpoints' })
 * try { await runExport(pg.source, filters, write, { prover: pg.prover }) } finally { await pg.close() }
 */
export function openPostgresExport(options: { url: string; schema?: string; checkpointsDir: string }): {
  source: AuditSource
  prover: () => Promise<RecordProver | undefined>
  close(): Promise<void>
} {
  const pool = createToolPool(options.url, 2)
  const t = schemaNames(options.schema)
  const proofs = new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) })
  return {
    source: postgresTreeAuditSource(pool, t),
    prover: async () => {
      const newest = readNewestCheckpoint(options.checkpointsDir)
      if (newest === undefined) return undefined
      // Checkpoints are signed from an instance's tree before its hashes reach the table: prove against
      // the newest one the persisted tree covers (its size at most the newest head's).
      let persisted: number
      try {
        const { rows } = await pool.query<{ size: string | null }>(
          `SELECT max(size) AS size FROM ${t.treeHeads}`,
        )
        persisted = Number(rows[0]?.size ?? 0)
      } catch (error) {
        throw unavailable(error)
      }
      const provable = readNewestCheckpoint(options.checkpointsDir, persisted)
      if (provable === undefined) {
        throw new TreeFilesError(
          `no checkpoint in ${options.checkpointsDir} is covered by the persisted tree yet (${t.treeHeads} reaches size ${persisted}, the oldest checkpoint is newer): its hashes are not persisted yet; export again once the service has written them (start it if it is not running)`,
        )
      }
      return checkpointProver(
        provable.note,
        proofs,
        (seq, err) =>
          new TreeFilesError(
            `cannot prove seq ${seq} against ${provable.path}: ${t.treeNodes} does not match it (${err.message}); start the service once to rebuild it`,
          ),
      )
    },
    close: () => pool.end(),
  }
}
