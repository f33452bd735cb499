import type pg from 'pg'
import { ulid } from 'ulid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdFactory } from '../ids/id-factory.js'
import { SessionLifecycleService } from '../sessions/session-lifecycle.js'
import { endInputAt, startInputAt, TEST_POLICY } from '../sessions/test-support/inputs.js'
import { chainEvent, eventOfBody, GENESIS_HASH } from './event-chain.js'
import { PostgresSessionRepository } from './postgres-session-repository.js'
import { schemaNames } from './schema-names.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
  testPool,
} from './test-support/postgres-server.js'
import { verifyPostgres } from './verify.js'

// What only PostgreSQL can get wrong: several instances writing one session at once, and the
// verifier's per-session rules. The shared lifecycle behaviour is in session-lifecycle.contract.test.ts.
const policy = TEST_POLICY
let server: TestPostgres
let url: string
let admin: pg.Pool
let schemas = 0

beforeAll(async () => {
  server = await startTestPostgres()
  url = await createServiceDatabase(server)
  admin = testPool(url.replace('care_service@', 'postgres@'), 2)
}, 60_000)

afterAll(async () => {
  await admin?.end()
  await server?.destroy()
}, 30_000)

/** `count` lifecycles (as many instances) over one fresh schema, each with its own pool. */
async function instances(count: number) {
  const schema = `care_repo_${++schemas}`
  const lifecycles: SessionLifecycleService[] = []
  for (let i = 0; i < count; i++) {
    const repository = await PostgresSessionRepository.open({
      database: { url, poolSize: 2 },
      schema,
      ownerRole: 'care_owner',
      timers: false,
    })
    const lifecycle = new SessionLifecycleService(repository, {
      policy,
      newId: createIdFactory(),
      timers: false,
    })
    await lifecycle.recover()
    lifecycles.push(lifecycle)
  }
  return { schema, lifecycles, close: () => Promise.all(lifecycles.map((l) => l.close())) }
}

describe('the PostgreSQL repository', () => {
  it('keeps one session chain intact when 8 instances touch it at once (compare-and-set on event_count)', async () => {
    const { schema, lifecycles, close } = await instances(8)
    try {
      for (let round = 0; round < 5; round++) {
        const now = Date.now()
        const { output } = await lifecycles[0]!.start(startInputAt(now))
        const touches = await Promise.allSettled(
          lifecycles.map((l) => l.touch(endInputAt(Date.now(), output.session_id))),
        )
        // Every touch is acknowledged: losers of the race re-read and go again.
        const acknowledged = touches.filter((t) => t.status === 'fulfilled').length
        expect(acknowledged).toBe(8)
        const summary = await lifecycles[1]!.describe(output.session_id)
        expect(summary?.event_count).toBe(1 + acknowledged)
      }
      const report = await verifyPostgres({ url, schema })
      expect(report.ok, JSON.stringify(report)).toBe(true)
      expect(report.events['session.touch']).toBeGreaterThan(0)
    } finally {
      await close()
    }
  }, 60_000)

  it('answers one 201 for concurrent duplicate starts sent to different instances', async () => {
    const { lifecycles, close } = await instances(4)
    try {
      const input = startInputAt(Date.now())
      const results = await Promise.all(lifecycles.map((l) => l.start({ ...input })))
      expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 201])
      expect(new Set(results.map((r) => r.output.session_id)).size).toBe(1)
    } finally {
      await close()
    }
  }, 30_000)

  it('stores a batch of starts with awkward metadata text exactly as it was hashed (one JSON parameter)', async () => {
    const { schema, lifecycles, close } = await instances(1)
    const t = schemaNames(schema)
    const awkward = [
      'quote " backslash \\ slash / \\u0000 as text',
      'nul \u0000 tab \t newline \n',
      'line separators \u2028 \u2029 \u0085',
      'lone surrogate \ud800 and a pair 😀',
      '{"json":"inside","n":[1,2]}',
      'ß é 中文',
    ]
    try {
      const now = Date.now()
      const results = await Promise.all(
        awkward.map((note, i) =>
          lifecycles[0]!.start(startInputAt(now + i, { metadata: { note, [`key ${note}`]: i } })),
        ),
      )
      expect(results.map((r) => r.status)).toEqual(awkward.map(() => 201))
      for (const { output } of results) {
        const { rows } = await admin.query<{ body: string; hash: string; event_time: Date; n: string }>(
          `SELECT e.body, e.hash, e.event_time, s.started_at AS n FROM ${t.events} e
             JOIN ${t.sessions} s USING (session_id) WHERE e.session_id = $1`,
          [output.session_id],
        )
        const { body, hash } = chainEvent(output, GENESIS_HASH)
        expect(rows[0]).toMatchObject({ body, hash })
        expect(eventOfBody(rows[0]!.body)).toEqual(output)
        expect(rows[0]!.event_time.toISOString()).toBe(output.timestamp)
        expect(Number(rows[0]!.n)).toBe(Date.parse(output.timestamp))
      }
      const report = await verifyPostgres({ url, schema })
      expect(report.ok, JSON.stringify(report)).toBe(true)
    } finally {
      await close()
    }
  }, 30_000)

  it('is flagged by the verifier when an event follows a session’s end', async () => {
    const { schema, lifecycles, close } = await instances(1)
    const t = schemaNames(schema)
    try {
      const { output } = await lifecycles[0]!.start(startInputAt(Date.now()))
      await lifecycles[0]!.end(endInputAt(Date.now(), output.session_id))
      expect((await verifyPostgres({ url, schema })).ok).toBe(true)
      const { rows } = await admin.query<{ body: string; hash: string }>(
        `SELECT body, hash FROM ${t.events} WHERE session_id = $1 AND event = 'session.end'`,
        [output.session_id],
      )
      const end = eventOfBody(rows[0]!.body)
      const touch = {
        ...startInputAt(Date.now()),
        record_id: ulid(),
        session_id: output.session_id,
        event: 'session.touch',
        timestamp: new Date(Date.parse(end.timestamp) + 1).toISOString(),
        source: 'session_manager',
      }
      const { body, hash } = chainEvent(touch as never, rows[0]!.hash)
      await admin.query(
        `INSERT INTO ${t.events} (session_id, session_seq, event, record_id, event_time, body, prev_hash, hash)
         VALUES ($1, 3, 'session.touch', $2, $3, $4, $5, $6)`,
        [output.session_id, touch.record_id, touch.timestamp, body, rows[0]!.hash, hash],
      )
      const report = await verifyPostgres({ url, schema })
      expect(report).toMatchObject({ ok: false })
      expect(report.ok ? undefined : report.problem).toMatchObject({
        reason: `session.touch after the end of session ${output.session_id}`,
      })
    } finally {
      await close()
    }
  }, 30_000)
})
