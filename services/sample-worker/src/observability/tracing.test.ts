import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadObservabilityConfig, startTracing } from '@care/observability'
// The session-manager is a service, not a library: its built modules are used as they ship.
import { loadConfig } from '@care/session-manager/dist/config.js'
import { startSessionManager } from '@care/session-manager/dist/server.js'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { pino } from 'pino'
import { ulid } from 'ulid'
import { afterAll, describe, expect, it } from 'vitest'
import { startWorker } from '../server.js'

// One tracer provider for the process, shared by both services as two real deployments would each
// register their own; the in-memory exporter sees the spans of both.
const exporter = new InMemorySpanExporter()
const tracing = startTracing({ service: 'care-test', exporter })
afterAll(() => tracing.shutdown())

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const CALLER_SPAN_ID = 'b7ad6b7169203331'
const silent = pino({ level: 'silent' })

function named(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.name === name)
}

describe('one trace through the session-manager and the worker', () => {
  it('records session.id on both sides under the caller’s trace id, and propagates it downstream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'care-trace-'))
    const manager = await startSessionManager(loadConfig({ PORT: '0', CARE_DATA_DIR: join(dir, 'sm') }), {
      logger: silent,
      observability: loadObservabilityConfig({}),
      tracing,
    })
    const worker = await startWorker({
      port: 0,
      host: '127.0.0.1',
      dataDir: join(dir, 'worker'),
      logger: silent,
      observability: loadObservabilityConfig({}),
      tracing,
    })
    try {
      await manager.ready
      const traceparent = `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`
      const started = await fetch(`http://127.0.0.1:${manager.port}/sessions.start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({
          schema_version: '1.1',
          record_id: ulid(),
          user_id: 'user-1',
          timestamp: new Date().toISOString(),
          source: 'ui',
          origin: 'human',
          performer_id: 'caregiver-1',
        }),
      })
      expect(started.status).toBe(201)
      const { session_id: sessionId } = (await started.json()) as { session_id: string }

      const inferred = await fetch(`${worker.url}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent, 'x-session-id': sessionId },
        body: JSON.stringify({
          schema_version: '1.1',
          record_id: ulid(),
          user_id: 'user-1',
          timestamp: new Date().toISOString(),
          source: 'ui',
          origin: 'human',
          performer_id: 'caregiver-1',
          text: 'How are you?',
        }),
      })
      expect(inferred.status).toBe(200)
      for (let i = 0; i < 100 && named('POST /infer').length === 0; i++)
        await new Promise((r) => setTimeout(r, 10))

      const [managerSpan] = named('POST /sessions.start')
      const [workerSpan] = named('POST /infer')
      const [downstreamServer] = named('POST /steps/annotate')
      const [downstreamClient] = exporter.getFinishedSpans().filter((s) => s.name === 'POST' && s.kind === 2)
      for (const span of [managerSpan, workerSpan, downstreamServer]) {
        expect(span?.spanContext().traceId).toBe(TRACE_ID)
        expect(span?.attributes['session.id']).toBe(sessionId)
      }
      expect(managerSpan!.parentSpanContext?.spanId).toBe(CALLER_SPAN_ID)
      expect(workerSpan!.parentSpanContext?.spanId).toBe(CALLER_SPAN_ID)
      // The worker's call to its downstream step is a CLIENT span under /infer, and the step's
      // SERVER span continues it: traceparent went out with x-session-id.
      expect(downstreamClient?.parentSpanContext?.spanId).toBe(workerSpan!.spanContext().spanId)
      expect(downstreamServer!.parentSpanContext?.spanId).toBe(downstreamClient!.spanContext().spanId)
      expect(managerSpan!.events.map((e) => e.name)).toEqual(['session.start'])
    } finally {
      await worker.close()
      await manager.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
