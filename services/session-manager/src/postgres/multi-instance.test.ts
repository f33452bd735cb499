import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestBody } from '../test-support/records.js'
import { writeCheckpoint } from './checkpoints.js'
import { schemaNames } from './schema-names.js'
import { assertBuilt, type Instance, postgresInstanceEnv, startInstance } from './test-support/instances.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
  testPool,
} from './test-support/postgres-server.js'
import { checkInvariants, Workload } from './test-support/workload.js'
import { verifyPostgres } from './verify.js'

const t = schemaNames()
let server: TestPostgres
let url: string
let admin: pg.Pool
const instances: Instance[] = []

beforeAll(async () => {
  assertBuilt()
  server = await startTestPostgres()
  url = await createServiceDatabase(server)
  admin = testPool(url.replace('care_service@', 'postgres@'), 2)
  // Two instances starting at once: the migration advisory lock must let exactly one create the schema.
  instances.push(
    ...(await Promise.all([
      startInstance(postgresInstanceEnv(url)),
      startInstance(postgresInstanceEnv(url)),
    ])),
  )
}, 60_000)

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop()))
  await admin?.end()
  await server?.destroy()
}, 30_000)

async function post(instance: Instance, kind: string, body: unknown) {
  const res = await fetch(`${instance.url}/sessions.${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

function input(user: string, extra: Record<string, unknown> = {}) {
  return requestBody({ user_id: user, ...extra })
}

describe('two instances on one database', () => {
  it('applied the migrations once although both instances started together', async () => {
    const { rows } = await admin.query(`SELECT version FROM ${t.migrations} ORDER BY version`)
    expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }])
  })

  it('starts on A, touches and ends on B, and answers a retried start and end on the other instance', async () => {
    const [a, b] = instances as [Instance, Instance]
    const start = input('user-x')
    const started = await post(a, 'start', start)
    expect(started.status).toBe(201)
    const sessionId = started.body.session_id
    expect((await post(b, 'touch', input('user-x', { session_id: sessionId }))).status).toBe(200)
    expect(await post(b, 'start', start)).toEqual({ status: 200, body: started.body })
    const end = input('user-x', { session_id: sessionId })
    const ended = await post(b, 'end', end)
    expect(ended.status).toBe(200)
    expect(await post(a, 'end', end)).toEqual(ended)
    expect((await post(a, 'end', input('user-x', { session_id: sessionId }))).status).toBe(409)
    const timeline = await fetch(`${a.url}/sessions/${sessionId}/timeline`)
    expect(((await timeline.json()) as { events: { event: string }[] }).events.map((e) => e.event)).toEqual([
      'session.start',
      'session.touch',
      'session.end',
    ])
    const exported = await fetch(`${b.url}/export`)
    expect(exported.status).toBe(200)
    expect(await exported.text()).toContain(String(sessionId))
  })

  it('keeps every acknowledged event, one session per start and one end per session under random load and timeouts', async () => {
    const seed = Number(process.env.CARE_TEST_SEED ?? Date.now() % 100_000)
    const load = new Workload(() => instances.map((i) => i.url), seed)
    await load.run({ maxOps: 600, maxMs: 8000, concurrency: 8 })
    // Idle timeout 1 s, sweeps every 250 ms: wait until every session has timed out or ended.
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${t.sessions} WHERE ended_at IS NULL`,
      )
      if (rows[0]!.n === '0') break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(load.violations, `seed ${seed}`).toEqual([])
    expect(load.acked.length, JSON.stringify(load.statuses)).toBeGreaterThan(50)
    expect(await checkInvariants(admin, t, load.acked, { allEnded: true }), `seed ${seed}`).toEqual([])
    const timeouts = await admin.query(
      `SELECT 1 FROM ${t.events} WHERE event = 'session.end' AND body LIKE '%"reason":"idle_timeout"%'`,
    )
    expect(timeouts.rowCount).toBeGreaterThan(0)
    while (await writeCheckpoint(admin, t)) {}
    const report = await verifyPostgres({ pool: admin })
    expect(report).toMatchObject({ ok: true, unanchored: 0 })
  }, 60_000)
})
