import { TreeProofs } from '@care/tlog'
import type { AuditSource } from '../audit/audit-source.js'
import type { RecordProver } from '../audit/export.js'
import { checkpointProver, TreeFilesError } from '../transparency/export-proofs.js'
import { readNewestCheckpoint } from '../transparency/newest-checkpoint.js'
import { createToolPool } from './database.js'
import { schemaNames } from './schema-names.js'
import { postgresTreeAuditSource } from './tree-lines.js'
import { readTreeNodes } from './tree-table.js'

/**
 * What the offline `care-sessions export --database-url` reads: the committed rows as their tree lines
 * (`postgresTreeAuditSource`, the bytes the leaves hash) and a prover against the newest checkpoint in
 * `checkpointsDir` (the service instances' `<CARE_DATA_DIR>/checkpoints`), whose proofs come from the
 * `tree_nodes` table (one query per batch of records) and are each checked against the checkpoint's
 * root before they are written: a table that does not match fails the export (`TreeFilesError`)
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
      return checkpointProver(
        newest.note,
        proofs,
        (seq, err) =>
          new TreeFilesError(
            `cannot prove seq ${seq} against ${newest.path}: ${t.treeNodes} does not match it (${err.message}); start the service once to rebuild it`,
          ),
      )
    },
    close: () => pool.end(),
  }
}
