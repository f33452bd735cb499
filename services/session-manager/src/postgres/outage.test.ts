import type { SessionManagerStartInput } from '@care/schemas'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdFactory } from '../ids/id-factory.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { requestBody } from '../test-support/records.js'
import { writeCheckpoint } from './checkpoints.js'
import { openPostgresSessions } from './postgres-session-repository.js'
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
  admin = testPool(url.replace('care_service@', 'postgres@'), 2) // its idle connections die with the server restarts below
}, 60_000)

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop()))
  await admin?.end()
  await server?.destroy()
}, 30_000)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function startInput(): SessionManagerStartInput {
  return requestBody() as unknown as SessionManagerStartInput
}

describe('database outages', () => {
  it('answers 503 while the database is down and recovers without a restart', async () => {
    const service = await openPostgresSessions({
      policy: { idleTimeoutMs: 60_000, maxDurationMs: 3_600_000, retryWindowMs: 3_600_000 },
      newId: createIdFactory(),
      database: { url, poolSize: 2, connectTimeoutMs: 500 },
      ownerRole: 'care_owner',
      schema: 'care_outage_unit', // its sessions stay open; keep them out of the load test's checks
      timers: false,
    })
    try {
      expect((await service.start(startInput())).status).toBe(201)
      await server.stop()
      const input = startInput()
      await expect(service.start(input)).rejects.toBeInstanceOf(StoreUnavailableError)
      await server.start()
      expect((await service.start(input)).status).toBe(201)
      expect(await service.openSessions()).toBe(2)
    } finally {
      await service.close()
    }
  }, 30_000)

  it('keeps every acknowledged event through a PostgreSQL restart and a SIGKILLed instance', async () => {
    instances.push(
      ...(await Promise.all([
        startInstance(postgresInstanceEnv(url)),
        startInstance(postgresInstanceEnv(url)),
      ])),
    )
    const live = new Set(instances)
    const seed = Number(process.env.CARE_TEST_SEED ?? Date.now() % 100_000)
    const load = new Workload(() => [...live].map((i) => i.url), seed)
    const running = load.run({ maxOps: 3000, maxMs: 7000, concurrency: 6 })

    await sleep(1200)
    await server.stop() // fast shutdown: in-flight transactions are rolled back, connections cut
    const victim = instances[1]!
    live.delete(victim)
    await victim.kill()
    await sleep(1200)
    await server.start()
    const replacement = await startInstance(postgresInstanceEnv(url))
    instances.push(replacement)
    live.add(replacement)
    await running
    await load.retryUnanswered()

    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${t.sessions} WHERE ended_at IS NULL`,
      )
      if (rows[0]!.n === '0') break
      await sleep(200)
    }
    const context = `seed ${seed}, statuses ${JSON.stringify(load.statuses)}`
    expect(load.violations, context).toEqual([])
    expect(load.statuses['503'] ?? 0, context).toBeGreaterThan(0)
    expect(load.acked.length, context).toBeGreaterThan(50)
    expect(await checkInvariants(admin, t, load.acked, { allEnded: true }), context).toEqual([])
    for (const instance of instances.slice(0, 1)) {
      expect(instance.process.exitCode, instance.output.slice(-20).join('\n')).toBeNull()
    }
    const first = await fetch(`${instances[0]!.url}/sessions.start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(startInput()),
    })
    expect(first.status, 'the instance that lived through the outage serves again').toBe(201)
    while (await writeCheckpoint(admin, t)) {}
    expect(await verifyPostgres({ pool: admin })).toMatchObject({ ok: true, unanchored: 0 })
  }, 90_000)
})
