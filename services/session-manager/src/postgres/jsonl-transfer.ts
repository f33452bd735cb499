import { createHash } from 'node:crypto'
import type { VerifyReport } from '@care/event-log'
import { canonicalJson, EventLog, readLog, withoutChainFields } from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import type pg from 'pg'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { stateAfter } from '../sessions/session-repository.js'
import { writeCheckpoint } from './checkpoints.js'
import { createToolPool, withClient } from './database.js'
import { chainEvent, GENESIS_HASH } from './event-chain.js'
import { migrate } from './migrations.js'
import { type ChainedSession, insertChained, PostgresEventStore } from './postgres-event-store.js'
import { DEFAULT_SCHEMA, schemaNames } from './schema-names.js'
import { type PostgresVerifyReport, verifyPostgres } from './verify.js'

/** Where the database is, for the one-shot transfers. */
export interface TransferDatabase {
  url?: string
  pool?: pg.Pool
  schema?: string
  ownerRole?: string
}

/**
 * What a transfer did: how many events, the content digest on both sides (SHA-256 over the
 * canonical JSON of every event without its chain fields, in order) and both verifications.
 *
 * @example
 * if (!report.ok) throw new Error('import did not verify')
 */
export interface TransferReport {
  ok: boolean
  events: number
  sourceDigest: string
  targetDigest: string
  logVerify: VerifyReport
  databaseVerify: PostgresVerifyReport
}

const BATCH = 1000

class ContentDigest {
  private readonly hash = createHash('sha256')
  count = 0
  add(record: Record<string, unknown>): SessionLifecycleEvent {
    const event = withoutChainFields(record)
    this.hash.update(`${canonicalJson(event)}\n`)
    this.count++
    return event as unknown as SessionLifecycleEvent
  }
  hex(): string {
    return this.hash.digest('hex')
  }
}

function poolOf(db: TransferDatabase): { pool: pg.Pool; owned: boolean } {
  return db.pool ? { pool: db.pool, owned: false } : { pool: createToolPool(db.url, 2), owned: true }
}

/**
 * Imports a JSONL event log (a CARE data directory) into an empty PostgreSQL store in one
 * transaction (run it with the service stopped): the log is verified first (`verifyLog`), every event is re-chained into its session
 * chain in log order, the sessions table is built, checkpoints are written over everything, and the
 * result is verified (`verifyPostgres`) and compared by content digest with the source.
 *
 * @example
 * const report = await importJsonlLog('/var/lib/care', { url: process.env.DATABASE_URL! })
 */
export async function importJsonlLog(dir: string, db: TransferDatabase): Promise<TransferReport> {
  const logVerify = await verifySessionLog(dir)
  if (!logVerify.ok)
    throw new Error(
      `the source log does not verify: ${logVerify.problem.file}:${logVerify.problem.line}: ${logVerify.problem.reason}`,
    )
  const { pool, owned } = poolOf(db)
  const t = schemaNames(db.schema ?? DEFAULT_SCHEMA)
  try {
    await migrate(pool, t, { ownerRole: db.ownerRole })
    const source = new ContentDigest()
    await withClient(pool, async (client) => {
      try {
        await client.query('BEGIN')
        const { rows } = await client.query(`SELECT 1 FROM ${t.events} LIMIT 1`)
        if (rows.length > 0)
          throw new Error('the PostgreSQL store is not empty; import only into a new schema')
        const states = new Map<string, ChainedSession>()
        let batch: Parameters<typeof insertChained>[2] = []
        const flush = async () => {
          if (batch.length === 0) return
          await insertChained(client, t, batch, [])
          batch = []
        }
        for await (const { record } of readLog(dir)) {
          const event = source.add(record)
          const previous = states.get(event.session_id)
          const prevHash = previous?.lastHash ?? GENESIS_HASH
          const { body, hash } = chainEvent(event, prevHash)
          const state = stateAfter(previous?.state, event)
          states.set(event.session_id, { state, lastHash: hash })
          batch.push({ event, sessionSeq: state.eventCount, prevHash, body, hash })
          if (batch.length >= BATCH) await flush()
        }
        await flush()
        const all = [...states.values()]
        for (let i = 0; i < all.length; i += BATCH)
          await insertChained(client, t, [], all.slice(i, i + BATCH))
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      }
    })
    while (await writeCheckpoint(pool, t)) {}
    const target = new ContentDigest()
    // Content in seq order (the import order): read by seq, not by time.
    let after = 0
    for (;;) {
      const page = await pool.query<{ seq: string; body: string }>(
        `SELECT seq, body FROM ${t.events} WHERE seq > $1 ORDER BY seq LIMIT 5000`,
        [after],
      )
      for (const row of page.rows) target.add(JSON.parse(row.body) as Record<string, unknown>)
      if (page.rows.length < 5000) break
      after = Number(page.rows.at(-1)!.seq)
    }
    const databaseVerify = await verifyPostgres({ pool, schema: t.raw })
    return transferReport(source, target, databaseVerify.ok, logVerify, databaseVerify)
  } finally {
    if (owned) await pool.end()
  }
}

/**
 * Exports the PostgreSQL store into a new JSONL log under `dir` (which must not hold a log yet):
 * events in log order (timestamp, then seq) from one snapshot, verified by `verifyPostgres` before
 * and by `verifyLog` after, and compared by content digest.
 *
 * @example
 * const report = await exportToJsonlLog({ url: process.env.DATABASE_URL! }, '/tmp/care-export')
 */
export async function exportToJsonlLog(db: TransferDatabase, dir: string): Promise<TransferReport> {
  const { pool, owned } = poolOf(db)
  const schema = db.schema ?? DEFAULT_SCHEMA
  try {
    const databaseVerify = await verifyPostgres({ pool, schema })
    if (!databaseVerify.ok)
      throw new Error(`the database does not verify: ${JSON.stringify(databaseVerify.problem)}`)
    const store = await PostgresEventStore.open({ pool, schema })
    const { log } = await EventLog.open({ dir })
    const source = new ContentDigest()
    try {
      if (log.head.seq !== 0) throw new Error(`${dir} already holds a log; export into an empty directory`)
      let pending: Promise<unknown>[] = []
      for await (const stored of store.scan()) {
        pending.push(
          log.append(
            source.add(stored as unknown as Record<string, unknown>) as unknown as Record<string, unknown>,
          ),
        )
        if (pending.length >= BATCH) {
          await Promise.all(pending)
          pending = []
        }
      }
      await Promise.all(pending)
    } finally {
      await log.close()
      await store.close()
    }
    const target = new ContentDigest()
    for await (const { record } of readLog(dir)) target.add(record)
    const logVerify = await verifySessionLog(dir)
    return transferReport(source, target, logVerify.ok, logVerify, databaseVerify)
  } finally {
    if (owned) await pool.end()
  }
}

/** A transfer is good when the copy verifies and carries exactly the source's events, in order. */
function transferReport(
  source: ContentDigest,
  target: ContentDigest,
  copyVerified: boolean,
  logVerify: TransferReport['logVerify'],
  databaseVerify: TransferReport['databaseVerify'],
): TransferReport {
  const sourceDigest = source.hex()
  const targetDigest = target.hex()
  return {
    ok: copyVerified && sourceDigest === targetDigest && source.count === target.count,
    events: source.count,
    sourceDigest,
    targetDigest,
    logVerify,
    databaseVerify,
  }
}
