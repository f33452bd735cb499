import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { monotonicFactory } from 'ulid'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionManagerApp } from '../app.js'
import { type AuditSource, logAuditSource, storeAuditSource } from '../audit/audit-source.js'
import { runExport } from '../audit/export.js'
import { scenario, tempDirs, writeLog } from '../audit/test-support/audit-fixtures.js'
import { loadConfig } from '../config.js'
import {
  bootMemorySessions,
  ManualClock,
  MemoryEventStore,
} from '../sessions/test-support/memory-event-store.js'

const CALLER = 'caller-token-0123456789'
const AUDITOR = 'auditor-token-0123456789'
const silent = { error() {} }
const dirs = tempDirs()
afterEach(() => dirs.cleanup())

async function appOver(audit: (store: MemoryEventStore) => AuditSource | undefined) {
  const clock = new ManualClock()
  const store = new MemoryEventStore()
  const config = loadConfig({ CARE_CALLER_TOKENS: CALLER, CARE_AUDITOR_TOKENS: AUDITOR })
  const service = await bootMemorySessions(store, { policy: config.policy, clock })
  const app = createSessionManagerApp({
    sessions: () => service,
    config,
    logger: silent,
    audit: () => audit(store),
  })
  return { app, clock, store }
}

const auditorGet = (
  app: { request: (url: string, init?: RequestInit) => Response | Promise<Response> },
  url: string,
) => app.request(url, { headers: { authorization: `Bearer ${AUDITOR}` } })

function linesOf(text: string): Record<string, unknown>[] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

const recordId = monotonicFactory()
function body(overrides: Record<string, unknown> = {}) {
  return {
    schema_version: '1.1',
    record_id: recordId(Date.parse('2026-03-01T12:00:00.000Z')),
    user_id: 'user-1',
    timestamp: '2026-03-01T12:00:00.000Z',
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...overrides,
  }
}

describe('GET /export', () => {
  it('streams the sessions of any EventStore as grouped JSONL and ends with the manifest line', async () => {
    const { app, clock } = await appOver((store) => storeAuditSource(store))
    const post = (path: string, payload: unknown, sessionId?: string) =>
      app.request(path, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${CALLER}`,
          'content-type': 'application/json',
          ...(sessionId ? { 'x-session-id': sessionId } : {}),
        },
        body: JSON.stringify(payload),
      })
    const a = (await (await post('/sessions.start', body({ user_id: 'user-a' }))).json()) as {
      session_id: string
    }
    clock.time += 1000
    const b = (await (await post('/sessions.start', body({ user_id: 'user-b' }))).json()) as {
      session_id: string
    }
    clock.time += 1000
    const touched = await post(
      '/sessions.touch',
      body({ user_id: 'user-a', session_id: a.session_id }),
      a.session_id,
    )
    expect(touched.status, await touched.clone().text()).toBe(200)
    const ended = await post(
      '/sessions.end',
      body({ user_id: 'user-b', session_id: b.session_id }),
      b.session_id,
    )
    expect(ended.status, await ended.clone().text()).toBe(200)

    const res = await auditorGet(app, '/export')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8')
    const lines = linesOf(await res.text())
    const manifest = lines.pop()!.manifest as Record<string, unknown>
    expect(lines.map((l) => [l.session_id, l.event])).toEqual([
      [a.session_id, 'session.start'],
      [a.session_id, 'session.touch'],
      [b.session_id, 'session.start'],
      [b.session_id, 'session.end'],
    ])
    expect(manifest).toMatchObject({
      counts: { sessions: 2, events: 4, scanned: 4 },
      source_head: { seq: 4 },
    })

    const onlyB = linesOf(await (await auditorGet(app, '/export?user_id=user-b&reason=explicit')).text())
    expect(onlyB.map((l) => l.event ?? 'manifest')).toEqual(['session.start', 'session.end', 'manifest'])
  })

  it('gives the same lines as the CLI export over the JSONL log', async () => {
    const dir = await dirs.make()
    await writeLog(dir, scenario())
    const { app } = await appOver(() => logAuditSource(dir))
    const text = await (await auditorGet(app, '/export?from=2026-03-01T12:00:20.000Z&reason=explicit')).text()
    let expected = ''
    await runExport(
      logAuditSource(dir),
      { from: '2026-03-01T12:00:20.000Z', reason: 'explicit' },
      (chunk) => {
        expected += Buffer.from(chunk).toString('utf8')
      },
    )
    const lines = text.trimEnd().split('\n')
    expect(`${lines.slice(0, -1).join('\n')}\n`).toBe(expected)
    expect(JSON.parse(lines.at(-1)!).manifest.filters).toEqual({
      from: '2026-03-01T12:00:20.000Z',
      reason: 'explicit',
    })
  })

  it('answers 400 with the offending fields for bad, unknown or repeated filters', async () => {
    const { app } = await appOver((store) => storeAuditSource(store))
    const bad = await auditorGet(app, '/export?from=last-week&reason=crash')
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({
      error: 'validation_failed',
      fields: [{ path: '/from' }, { path: '/reason' }],
    })
    const unknown = await auditorGet(app, '/export?user=x&user_id=a&user_id=b')
    expect(unknown.status).toBe(400)
    expect(await unknown.json()).toMatchObject({ fields: [{ path: '/user' }, { path: '/user_id' }] })
  })

  it('needs the auditor role', async () => {
    const { app } = await appOver((store) => storeAuditSource(store))
    expect((await app.request('/export')).status).toBe(401)
    expect((await app.request('/export', { headers: { authorization: `Bearer ${CALLER}` } })).status).toBe(
      403,
    )
  })

  it('ends with a log_integrity line naming file:line when the log turns out damaged mid-stream', async () => {
    const dir = await dirs.make()
    await writeLog(dir, scenario())
    const file = join(dir, 'events', 'events-000001.jsonl')
    const lines = (await readFile(file, 'utf8')).split('\n')
    lines[5] = lines[5]!.replace('user-b', 'user-x')
    await writeFile(file, lines.join('\n'))
    const { app } = await appOver(() => logAuditSource(dir))
    const res = await auditorGet(app, '/export')
    expect(res.status).toBe(200)
    const out = linesOf(await res.text())
    expect(out.at(-1)).toMatchObject({
      error: 'log_integrity',
      message: expect.stringContaining('events-000001.jsonl:6 (hash does not match the line content)'),
    })
    expect(out.some((l) => 'manifest' in l)).toBe(false)
  })
})
