import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventLog } from '@care/event-log'
import type pg from 'pg'
import { monotonicFactory } from 'ulid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main as careSessions } from '../cli/cli.js'
import { createIdFactory } from '../ids/id-factory.js'
import { TEST_POLICY } from '../sessions/test-support/inputs.js'
import { writeCheckpoint } from './checkpoints.js'
import { runPostgresCli } from './cli.js'
import { UnsafeDatabaseError } from './database.js'
import { exportToJsonlLog, importJsonlLog } from './jsonl-transfer.js'
import { migrate } from './migrations.js'
import { PostgresEventStore } from './postgres-event-store.js'
import { openPostgresSessions, PostgresSessionRepository } from './postgres-session-repository.js'
import { schemaNames } from './schema-names.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
  testPool,
} from './test-support/postgres-server.js'
import { verifyPostgres } from './verify.js'

const policy = TEST_POLICY
const recordId = monotonicFactory()
let server: TestPostgres
let url: string
let adminUrl: string
let schemas = 0
const pools: pg.Pool[] = []

beforeAll(async () => {
  server = await startTestPostgres()
  url = await createServiceDatabase(server)
  adminUrl = url.replace('care_service@', 'postgres@')
}, 60_000)

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()))
  await server?.destroy()
}, 30_000)

function pool(connectionString: string): pg.Pool {
  const p = testPool(connectionString, 3)
  pools.push(p)
  return p
}

function startInput(user = 'user-1') {
  return {
    schema_version: '1.1' as const,
    record_id: recordId(),
    user_id: user,
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human' as const,
    performer_id: 'caregiver-1',
  }
}

/** A service on a fresh schema with a few sessions: started, touched, one ended. */
async function populated(options: { ownerRole?: string; serviceUrl?: string } = { ownerRole: 'care_owner' }) {
  const schema = `care_guard_${++schemas}`
  const service = await openPostgresSessions({
    policy,
    newId: createIdFactory(),
    database: { url: options.serviceUrl ?? url, poolSize: 2 },
    ownerRole: options.ownerRole,
    schema,
    timers: false,
  })
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    const { output } = await service.start(startInput(`user-${i % 2}`))
    ids.push(output.session_id)
    await service.touch({ ...startInput(output.user_id), session_id: output.session_id })
  }
  await service.end({ ...startInput('user-0'), session_id: ids[0]! })
  await service.close()
  return { schema, t: schemaNames(schema), ids }
}

describe('migrations', () => {
  it('applies each migration once when many instances migrate at the same moment', async () => {
    const t = schemaNames(`care_guard_${++schemas}`)
    const service = pool(url)
    const reports = await Promise.all(
      Array.from({ length: 5 }, () => migrate(service, t, { ownerRole: 'care_owner' })),
    )
    expect(reports.flatMap((r) => r.applied)).toEqual([1, 2, 3])
    expect(reports.every((r) => r.current === 3)).toBe(true)
    expect((await migrate(service, t, { ownerRole: 'care_owner' })).applied).toEqual([])
  })
})

describe('append-only event table', () => {
  it('refuses UPDATE, DELETE and TRUNCATE by the service role (permissions)', async () => {
    const { t } = await populated()
    const service = pool(url)
    for (const sql of [
      `UPDATE ${t.events} SET body = body`,
      `DELETE FROM ${t.events}`,
      `TRUNCATE ${t.events}`,
      `UPDATE ${t.checkpoints} SET hash = hash`,
      `SET ROLE care_owner; UPDATE ${t.events} SET body = body`,
    ]) {
      await expect(service.query(sql), sql).rejects.toMatchObject({ code: '42501' })
    }
  })

  it('refuses UPDATE, DELETE and TRUNCATE even by a superuser (triggers)', async () => {
    const { t } = await populated()
    const admin = pool(adminUrl)
    for (const sql of [
      `UPDATE ${t.events} SET body = body`,
      `DELETE FROM ${t.events}`,
      `TRUNCATE ${t.events}`,
    ]) {
      await expect(admin.query(sql), sql).rejects.toThrow(/append-only/)
    }
  })

  it('keeps the table append-only when the service role owns the schema itself', async () => {
    await server.sql(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'care_single') THEN CREATE ROLE care_single LOGIN; END IF;
    END $$`)
    const database = url.split('/').pop()!
    await server.sql(`GRANT CREATE ON DATABASE ${database} TO care_single`)
    const singleUrl = url.replace('care_service@', 'care_single@')
    const { t } = await populated({ serviceUrl: singleUrl })
    const single = pool(singleUrl)
    await expect(single.query(`UPDATE ${t.events} SET body = body`)).rejects.toMatchObject({ code: '42501' })
    await expect(single.query(`DELETE FROM ${t.events}`)).rejects.toMatchObject({ code: '42501' })
    await expect(single.query(`TRUNCATE ${t.events}`)).rejects.toThrow(/append-only/)
  })

  it('allows at most one end per session, whoever writes it', async () => {
    const { t, ids } = await populated()
    const admin = pool(adminUrl)
    const { rows } = await admin.query(
      `SELECT * FROM ${t.events} WHERE session_id = $1 AND event = 'session.end'`,
      [ids[0]],
    )
    const end = rows[0]
    await expect(
      admin.query(
        `INSERT INTO ${t.events} (session_id, session_seq, event, record_id, event_time, body, prev_hash, hash)
         VALUES ($1, 99, 'session.end', $2, now(), $3, $4, $5)`,
        [end.session_id, recordId(), end.body, end.prev_hash, end.hash],
      ),
    ).rejects.toMatchObject({ code: '23505', constraint: 'events_one_end_per_session' })
  })
})

describe('durability settings', () => {
  it('refuses to start against a database with synchronous_commit off', async () => {
    const database = url.split('/').pop()!
    await server.sql(`ALTER ROLE care_service IN DATABASE ${database} SET synchronous_commit = off`)
    try {
      const opening = PostgresSessionRepository.open({
        database: { url },
        ownerRole: 'care_owner',
        schema: `care_guard_${++schemas}`,
        timers: false,
      })
      await expect(opening).rejects.toBeInstanceOf(UnsafeDatabaseError)
    } finally {
      await server.sql(`ALTER ROLE care_service IN DATABASE ${database} RESET synchronous_commit`)
    }
  })

  it('refuses to start against a server with fsync off', async () => {
    await server.sql('ALTER SYSTEM SET fsync = off')
    await server.sql('SELECT pg_reload_conf()')
    try {
      const opening = PostgresSessionRepository.open({
        database: { url },
        ownerRole: 'care_owner',
        schema: `care_guard_${++schemas}`,
        timers: false,
      })
      await expect(opening).rejects.toThrow(UnsafeDatabaseError)
    } finally {
      await server.sql('ALTER SYSTEM RESET fsync')
      await server.sql('SELECT pg_reload_conf()')
    }
  })
})

describe('verifyPostgres', () => {
  it('verifies an untouched store, with every event under a checkpoint', async () => {
    const { schema, t } = await populated()
    const admin = pool(adminUrl)
    expect(await verifyPostgres({ pool: admin, schema })).toMatchObject({ ok: true, unanchored: 13 })
    const checkpoint = await writeCheckpoint(admin, t)
    const report = await verifyPostgres({
      pool: admin,
      schema,
      expectedCheckpoint: { checkpoint_no: 1, hash: checkpoint!.hash },
    })
    expect(report).toMatchObject({ ok: true, records: 13, sessions: 6, checkpoints: 1, unanchored: 0 })
  })

  it('names the first row whose body was rewritten behind the triggers’ back', async () => {
    const { schema, t } = await populated()
    const admin = pool(adminUrl)
    const { rows } = await admin.query(
      `SELECT seq FROM ${t.events} WHERE event = 'session.touch' ORDER BY seq LIMIT 1`,
    )
    await admin.query(`BEGIN; SET LOCAL session_replication_role = replica;
      UPDATE ${t.events} SET body = replace(body, '"user-0"', '"user-9"') WHERE seq = ${rows[0].seq}; COMMIT`)
    expect(await verifyPostgres({ pool: admin, schema })).toMatchObject({
      ok: false,
      problem: { seq: Number(rows[0].seq), reason: 'hash does not match the stored body' },
    })
  })

  it('finds a whole session deleted from a checkpointed range', async () => {
    const { schema, t, ids } = await populated()
    const admin = pool(adminUrl)
    await writeCheckpoint(admin, t)
    await admin.query(`BEGIN; SET LOCAL session_replication_role = replica;
      DELETE FROM ${t.events} WHERE session_id = '${ids[3]}'; COMMIT`)
    const report = await verifyPostgres({ pool: admin, schema })
    expect(report).toMatchObject({ ok: false, problem: { checkpoint_no: 1 } })
    expect(report.ok === false && report.problem.reason).toMatch(/counts 13 events .* the table has 11/)
  })

  it('finds a missing event in the middle of a session chain', async () => {
    const { schema, t, ids } = await populated()
    const admin = pool(adminUrl)
    await admin.query(`BEGIN; SET LOCAL session_replication_role = replica;
      DELETE FROM ${t.events} WHERE session_id = '${ids[0]}' AND event = 'session.touch'; COMMIT`)
    const report = await verifyPostgres({ pool: admin, schema })
    expect(report.ok === false && report.problem.reason).toMatch(/position 3 follows 1/)
  })
})

describe('JSONL import and export', () => {
  it('imports a JSONL log, exports it back, and both sides verify with the same content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'care-import-'))
    const back = await mkdtemp(join(tmpdir(), 'care-export-'))
    try {
      // A source log written by the embedded store's log.
      const { log } = await EventLog.open({ dir })
      const newId = createIdFactory()
      const t0 = Date.parse('2026-03-01T12:00:00.000Z')
      for (let i = 0; i < 30; i++) {
        const sessionId = newId(t0 + i)
        const at = (ms: number) => new Date(t0 + i * 10 + ms).toISOString()
        const base = {
          schema_version: '1.1',
          user_id: `user-${i % 3}`,
          session_id: sessionId,
          source: 'session_manager',
          origin: 'human',
        }
        await log.append({
          ...base,
          record_id: newId(),
          timestamp: at(0),
          event: 'session.start',
          input_record_id: newId(),
          input_source: 'ui',
          input_digest: `sha256:${'a'.repeat(64)}`,
          idle_timeout_ms: 1000,
          max_duration_ms: 5000,
        })
        await log.append({
          ...base,
          record_id: newId(),
          timestamp: at(1),
          event: 'session.touch',
          input_record_id: newId(),
          input_source: 'ui',
          input_digest: `sha256:${'b'.repeat(64)}`,
        })
        if (i % 2 === 0) {
          await log.append({
            ...base,
            record_id: newId(),
            timestamp: at(2),
            origin: 'system',
            event: 'session.end',
            reason: 'idle_timeout',
            started_at: at(0),
            ended_at: at(1001),
          })
        }
      }
      await log.close()
      const schema = `care_guard_${++schemas}`
      const imported = await importJsonlLog(dir, { url, schema, ownerRole: 'care_owner' })
      expect(imported).toMatchObject({ ok: true, events: 75, databaseVerify: { ok: true, unanchored: 0 } })
      expect(imported.targetDigest).toBe(imported.sourceDigest)
      await expect(importJsonlLog(dir, { url, schema, ownerRole: 'care_owner' })).rejects.toThrow(/not empty/)

      const store = await PostgresEventStore.open({ url: adminUrl, schema })
      const scanned: string[] = []
      for await (const event of store.scan()) scanned.push(event.event)
      expect(scanned).toHaveLength(75)
      expect(store.head().seq).toBe(75)
      await store.close()

      const exported = await exportToJsonlLog({ url, schema }, back)
      expect(exported).toMatchObject({ ok: true, events: 75, logVerify: { ok: true, records: 75 } })
      expect(exported.targetDigest).toBe(imported.sourceDigest)
    } finally {
      await rm(dir, { recursive: true, force: true })
      await rm(back, { recursive: true, force: true })
    }
  })
})

describe('care-sessions-pg', () => {
  it('checkpoints and verifies from the command line, exiting 1 with the bad row after tampering', async () => {
    const { schema, t } = await populated()
    const lines: string[] = []
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) }
    expect(await runPostgresCli(['checkpoint', '--schema', schema], io, { DATABASE_URL: url })).toBe(0)
    expect(await runPostgresCli(['verify', '--database-url', url, '--schema', schema], io)).toBe(0)
    expect(lines.at(-1)).toMatch(
      /^ok: 13 events, 6 sessions, 1 checkpoints, 0 after the newest checkpoint; head checkpoint 1 [0-9a-f]{64}$/,
    )
    const admin = pool(adminUrl)
    await admin.query(`BEGIN; SET LOCAL session_replication_role = replica;
      UPDATE ${t.events} SET body = body || ' ' WHERE seq = (SELECT max(seq) FROM ${t.events}); COMMIT`)
    expect(await runPostgresCli(['verify', '--database-url', url, '--schema', schema], io)).toBe(1)
    expect(lines.at(-1)).toMatch(/^FAILED at seq \d+: hash does not match the stored body/)
    expect(await runPostgresCli(['verify'], io, {})).toBe(2)

    // care-sessions verify --database-url reaches the same verifier.
    const out: string[] = []
    const write = (chunk: string | Uint8Array) => out.push(String(chunk))
    const cliIo = { stdout: { write }, stderr: { write }, env: {} }
    expect(await careSessions(['verify', '--database-url', url, '--schema', schema], cliIo)).toBe(1)
    expect(out.join('')).toMatch(/FAILED at seq \d+: hash does not match the stored body/)
  })
})
