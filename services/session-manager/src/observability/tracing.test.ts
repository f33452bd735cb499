import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadObservabilityConfig, startTracing } from '@care/observability'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'

const exporter = new InMemorySpanExporter()
const tracing = startTracing({ service: 'session-manager', exporter })
const dir = mkdtempSync(join(tmpdir(), 'care-tracing-'))
afterAll(async () => {
  await tracing.shutdown()
  rmSync(dir, { recursive: true, force: true })
})

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT_SPAN_ID = '00f067aa0ba902b7'

function spansNamed(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name)
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe('tracing (OpenTelemetry SDK, in-memory exporter)', () => {
  it('continues the caller’s traceparent with a span per request and per log append, carrying session.id', async () => {
    const running = await startSessionManager(loadConfig({ PORT: '0', CARE_DATA_DIR: dir }), {
      logger: pino({ level: 'silent' }),
      observability: loadObservabilityConfig({}),
      tracing,
    })
    try {
      await running.ready
      const url = `http://127.0.0.1:${running.port}`
      const traceparent = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`
      const started = await postJson(`${url}/sessions.start`, requestBody(), { traceparent })
      expect(started?.status).toBe(201)
      const sessionId = started!.body.session_id as string
      const ended = await postJson(`${url}/sessions.end`, requestBody({ session_id: sessionId }), {
        traceparent,
      })
      expect(ended?.status).toBe(200)
      await until(() => spansNamed('POST /sessions.end').length === 1)

      const [start] = spansNamed('POST /sessions.start')
      const [end] = spansNamed('POST /sessions.end')
      for (const span of [start!, end!]) {
        expect(span.spanContext().traceId).toBe(TRACE_ID)
        expect(span.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID)
        expect(span.attributes['session.id']).toBe(sessionId)
      }
      expect(start!.attributes['http.route']).toBe('/sessions.start')
      expect(start!.attributes['http.response.status_code']).toBe(201)
      expect(start!.events.map((e) => [e.name, e.attributes?.['session.id']])).toEqual([
        ['session.start', sessionId],
      ])
      expect(end!.events.map((e) => e.name)).toEqual(['session.end'])

      const appends = spansNamed('event_log.append')
      expect(appends).toHaveLength(2)
      for (const append of appends) {
        expect(append.spanContext().traceId).toBe(TRACE_ID)
        expect(append.attributes['session.id']).toBe(sessionId)
      }
      const commits = spansNamed('event_log.commit')
      expect(commits.map((s) => s.attributes['care.commit.records'])).toEqual([1, 1])
      expect(commits.map((s) => s.spanContext().traceId)).toEqual([TRACE_ID, TRACE_ID])
      expect(appends.map((s) => s.parentSpanContext?.spanId)).toEqual([
        start!.spanContext().spanId,
        end!.spanContext().spanId,
      ])
    } finally {
      await running.stop()
    }
  })
})
