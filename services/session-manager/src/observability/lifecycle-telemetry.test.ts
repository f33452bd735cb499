import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadObservabilityConfig, startTracing } from '@care/observability'
import { parseMetrics } from '@care/observability/testing'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { pino } from 'pino'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { postgresInstanceEnv } from '../postgres/test-support/instances.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../postgres/test-support/postgres-server.js'
import { startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'

// Timeout ends by reason and the session.start / session.end span events come from the lifecycle
// core's observer, so every store gets them: the same checks run on the embedded log and PostgreSQL.
const exporter = new InMemorySpanExporter()
const tracing = startTracing({ service: 'session-manager', exporter })
const dir = mkdtempSync(join(tmpdir(), 'care-lifecycle-telemetry-'))
let server: TestPostgres
beforeAll(async () => {
  server = await startTestPostgres()
}, 60_000)
afterAll(async () => {
  await tracing.shutdown()
  await server?.destroy()
  rmSync(dir, { recursive: true, force: true })
}, 30_000)
beforeEach(() => exporter.reset())

const IDLE_TIMEOUT = '2s'
const stores = [
  { name: 'embedded log', env: async () => ({ CARE_DATA_DIR: dir }) },
  { name: 'PostgreSQL', env: async () => postgresInstanceEnv(await createServiceDatabase(server)) },
]

function spansNamed(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name)
}

const eventsOf = (span: ReadableSpan) =>
  span.events.map((e) => [e.name, e.attributes?.['session.id'], e.attributes?.['care.end_reason']])

describe.each(stores)('lifecycle telemetry on the $name', (store) => {
  it('counts timeout ends by reason and records session.start/session.end span events with session.id', async () => {
    const running = await startSessionManager(
      loadConfig({ ...(await store.env()), PORT: '0', CARE_IDLE_TIMEOUT: IDLE_TIMEOUT }),
      { logger: pino({ level: 'silent' }), observability: loadObservabilityConfig({}), tracing },
    )
    try {
      await running.ready
      const url = `http://127.0.0.1:${running.port}`
      const ended = await postJson(`${url}/sessions.start`, requestBody())
      const idle = await postJson(`${url}/sessions.start`, requestBody({ user_id: 'user-2' }))
      expect([ended?.status, idle?.status]).toEqual([201, 201])
      const endedId = ended!.body.session_id as string
      const idleId = idle!.body.session_id as string
      const end = await postJson(`${url}/sessions.end`, requestBody({ session_id: endedId }))
      expect(end?.status).toBe(200)

      // Wait (bounded) for the service to end the idle session by itself.
      const scrape = async () => parseMetrics(await (await fetch(`${url}/metrics`)).text())
      let m = await scrape()
      for (
        let i = 0;
        i < 100 && m.value('care_session_timeouts_total', { reason: 'idle_timeout' }) === 0;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100))
        m = await scrape()
      }
      expect(m.value('care_session_timeouts_total', { reason: 'idle_timeout' })).toBe(1)
      expect(m.value('care_session_timeouts_total', { reason: 'max_duration' })).toBe(0)
      expect(m.labelValues('care_session_timeouts_total', 'reason')).not.toContain('explicit')
      expect(m.value('care_sessions_open')).toBe(0)

      // The request spans carry the lifecycle changes as span events.
      const starts = spansNamed('POST /sessions.start')
      expect(starts.map(eventsOf).sort()).toEqual(
        [[['session.start', endedId, undefined]], [['session.start', idleId, undefined]]].sort(),
      )
      for (const span of starts) expect([endedId, idleId]).toContain(span.attributes['session.id'])
      expect(eventsOf(spansNamed('POST /sessions.end')[0]!)).toEqual([['session.end', endedId, 'explicit']])

      // One append span per stored event; the timeout end (no request) carries its event itself.
      const appends = spansNamed('event_log.append').filter((s) => s.attributes['care.stored'] === true)
      expect(appends.map((s) => [s.attributes['session.id'], s.attributes['care.event']]).sort()).toEqual(
        [
          [endedId, 'session.start'],
          [idleId, 'session.start'],
          [endedId, 'session.end'],
          [idleId, 'session.end'],
        ].sort(),
      )
      const timeoutEnd = appends.find((s) => s.attributes['session.id'] === idleId && s.events.length > 0)
      expect(timeoutEnd && eventsOf(timeoutEnd)).toEqual([['session.end', idleId, 'idle_timeout']])
      // Found by the timer, not by a request: its own trace, not the (ended) start request's.
      expect(timeoutEnd?.parentSpanContext).toBeUndefined()
      const requestSpanIds = [...starts, ...spansNamed('POST /sessions.end')].map(
        (s) => s.spanContext().spanId,
      )
      for (const span of appends.filter((s) => s !== timeoutEnd))
        expect(requestSpanIds).toContain(span.parentSpanContext?.spanId)
    } finally {
      await running.stop()
    }
  }, 30_000)
})
