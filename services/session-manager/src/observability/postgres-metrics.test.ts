import { loadObservabilityConfig } from '@care/observability'
import { parseMetrics } from '@care/observability/testing'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { postgresInstanceEnv } from '../postgres/test-support/instances.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../postgres/test-support/postgres-server.js'
import { startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'

let server: TestPostgres
let url: string
beforeAll(async () => {
  server = await startTestPostgres()
  url = await createServiceDatabase(server)
})
afterAll(() => server?.destroy())

describe('/metrics on the PostgreSQL store', () => {
  it('reports the pool’s connections, open sessions counted in the database, and the traffic', async () => {
    const running = await startSessionManager(
      loadConfig({ ...postgresInstanceEnv(url), PORT: '0', CARE_IDLE_TIMEOUT: '1h' }),
      {
        logger: pino({ level: 'silent' }),
        observability: loadObservabilityConfig({}),
      },
    )
    try {
      await running.ready
      const base = `http://127.0.0.1:${running.port}`
      for (let i = 0; i < 3; i++)
        expect((await postJson(`${base}/sessions.start`, requestBody()))?.status).toBe(201)
      const m = parseMetrics(await (await fetch(`${base}/metrics`)).text())
      expect(m.value('care_http_requests_total', { route: '/sessions.start', status: '201' })).toBe(3)
      expect(m.value('care_sessions_open')).toBe(3)
      const pooled =
        m.value('care_db_pool_connections', { state: 'idle' }) +
        m.value('care_db_pool_connections', { state: 'in_use' })
      expect(pooled).toBeGreaterThan(0)
      expect(pooled).toBeLessThanOrEqual(5) // CARE_DB_POOL_SIZE
      expect(m.names).toContain('care_db_pool_waiting_requests')
      expect(m.names).toContain('care_recovery_duration_seconds')
    } finally {
      await running.stop()
    }
  })
})
