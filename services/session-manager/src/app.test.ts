import {
  compileValidator,
  ErrorResponse,
  validateSessionManagerEndOutput,
  validateSessionManagerStartOutput,
} from '@care/schemas'
import { monotonicFactory } from 'ulid'
import { beforeEach, describe, expect, it } from 'vitest'
import { createSessionManagerApp } from './app.js'
import { loadConfig } from './config.js'
import type { SessionLifecycleService } from './sessions/session-lifecycle.js'
import {
  bootMemorySessions,
  ManualClock,
  MemoryEventStore,
} from './sessions/test-support/memory-event-store.js'

const CALLER = 'caller-token-0123456789'
const AUDITOR = 'auditor-token-0123456789'
const recordId = monotonicFactory()
const silent = { error() {} }
const validateErrorResponse = compileValidator(ErrorResponse)

// biome-ignore lint/suspicious/noExplicitAny: assertions below walk arbitrary response JSON
type Json = any
const json = async (res: Response | Promise<Response>): Promise<Json> => (await res).json()

let clock: ManualClock
let store: MemoryEventStore
let service: SessionLifecycleService | undefined
let app: ReturnType<typeof createSessionManagerApp>

async function boot(tokens = true) {
  clock = new ManualClock(Date.now())
  store = new MemoryEventStore()
  const config = loadConfig(tokens ? { CARE_CALLER_TOKENS: CALLER, CARE_AUDITOR_TOKENS: AUDITOR } : {})
  service = await bootMemorySessions(store, { policy: config.policy, clock })
  app = createSessionManagerApp({
    sessions: () => service,
    config,
    logger: silent,
  })
}

function base(overrides: Record<string, unknown> = {}) {
  return {
    schema_version: '1.1',
    record_id: recordId(),
    user_id: 'user-1',
    timestamp: '2026-03-01T12:00:00.000Z',
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...overrides,
  }
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${CALLER}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

function get(path: string, token = AUDITOR) {
  return app.request(path, { headers: { authorization: `Bearer ${token}` } })
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status)
  const body = await json(res)
  expect(validateErrorResponse.check(body)).toBe(true)
  expect(body.error).toBe(code)
  expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/) // no stack traces
  return body
}

async function startSession(): Promise<string> {
  const res = await post('/sessions.start', base())
  expect(res.status).toBe(201)
  return (await json(res)).session_id
}

beforeEach(() => boot())

describe('POST /sessions.start', () => {
  it('answers 201 with a schema-valid start output', async () => {
    const res = await post('/sessions.start', base())
    expect(res.status).toBe(201)
    expect(validateSessionManagerStartOutput.check(await json(res))).toBe(true)
  })

  it('answers a retry with 200 and the original output; a changed body under the same record_id with 422', async () => {
    const input = base()
    const first = await json(post('/sessions.start', input))
    const retry = await post('/sessions.start', input)
    expect(retry.status).toBe(200)
    expect(await json(retry)).toEqual(first)
    await expectError(
      await post('/sessions.start', { ...input, user_id: 'user-2' }),
      422,
      'idempotency_conflict',
    )
  })

  it('answers two identical starts in flight at once with one 201 and one 200 carrying the same body, storing one event', async () => {
    const input = base()
    store.holdCommits() // the group commit of the first start is pending until the test commits it
    const first = post('/sessions.start', input)
    const second = post('/sessions.start', input)
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(store.waiting).toBe(1)
    store.commit()
    const answers = await Promise.all([first, second])
    expect(answers.map((res) => res.status).sort()).toEqual([200, 201])
    const [a, b] = await Promise.all(answers.map((res) => json(res)))
    expect(b).toEqual(a)
    expect(store.events).toHaveLength(1)
  })

  it('answers both in-flight duplicates 503 when the group commit fails, then their retries 201 and 200', async () => {
    const input = base()
    store.holdCommits()
    const failed = [post('/sessions.start', input), post('/sessions.start', input)]
    await new Promise<void>((resolve) => setImmediate(resolve))
    store.failCommit()
    for (const res of await Promise.all(failed)) await expectError(res, 503, 'storage_unavailable')
    const first = await post('/sessions.start', input)
    const second = await post('/sessions.start', input)
    expect([first.status, second.status]).toEqual([201, 200])
    expect(await json(second)).toEqual(await json(first))
    expect(store.events).toHaveLength(1)
  })

  it.each([
    ['malformed JSON', '{"schema_version":', 'malformed_json'],
    ['a schema violation', base({ timestamp: '2026-03-01T12:00:00+00:00' }), 'validation_failed'],
    ['an unknown property', base({ extra: 1 }), 'validation_failed'],
    ['a __proto__ key', `{"__proto__":{"admin":true},${JSON.stringify(base()).slice(1)}`, 'forbidden_key'],
    ['a nested constructor key', base({ metadata: { constructor: 'x' } }), 'forbidden_key'],
  ])('answers 400 for %s', async (_name, body, code) => {
    await expectError(await post('/sessions.start', body), 400, code)
    expect(store.events).toHaveLength(0)
  })

  it('names the offending fields of a schema violation', async () => {
    const body = await expectError(
      await post('/sessions.start', base({ performer_id: undefined })),
      400,
      'validation_failed',
    )
    expect(body.fields).toEqual([expect.objectContaining({ path: '/performer_id' })])
  })

  it('answers 415 for a body that is not JSON', async () => {
    await expectError(
      await post('/sessions.start', 'hello', { 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    )
  })

  it('answers 413 for a body over 16 KiB, declared or streamed', async () => {
    const big = JSON.stringify(base({ metadata: { note: 'x'.repeat(17 * 1024) } }))
    await expectError(await post('/sessions.start', big), 413, 'payload_too_large')
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)))
        controller.close()
      },
    })
    const res = await app.request('/sessions.start', {
      method: 'POST',
      headers: { authorization: `Bearer ${CALLER}`, 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit)
    await expectError(res, 413, 'payload_too_large')
  })

  it('answers 401 without a token or with a wrong one, and 403 for the auditor role', async () => {
    await expectError(await post('/sessions.start', base(), { authorization: '' }), 401, 'unauthorized')
    await expectError(
      await post('/sessions.start', base(), { authorization: 'Bearer nope-nope-nope-nope' }),
      401,
      'unauthorized',
    )
    await expectError(
      await post('/sessions.start', base(), { authorization: `Bearer ${AUDITOR}` }),
      403,
      'forbidden',
    )
  })

  it('answers 503 with Retry-After and acknowledges nothing when the store fails', async () => {
    store.failAppends = true
    const res = await post('/sessions.start', base())
    await expectError(res, 503, 'storage_unavailable')
    expect(res.headers.get('retry-after')).toBe('1')
  })

  it('answers 503 not_ready with Retry-After before recovery has finished', async () => {
    service = undefined
    const res = await post('/sessions.start', base())
    await expectError(res, 503, 'not_ready')
    expect(res.headers.get('retry-after')).toBeTruthy()
    await expectError(await app.request('/readyz'), 503, 'not_ready')
  })
})

describe('POST /sessions.end and /sessions.touch', () => {
  it('answers 400 session_id_missing when no session_id is given', async () => {
    await expectError(await post('/sessions.end', base()), 400, 'session_id_missing')
    await expectError(await post('/sessions.touch', base()), 400, 'session_id_missing')
  })

  it('answers 400 when the header and the body name different sessions', async () => {
    const id = await startSession()
    const other = recordId()
    await expectError(
      await post('/sessions.end', base({ session_id: id }), { 'x-session-id': other }),
      400,
      'session_id_conflict',
    )
  })

  it('ends a session with reason explicit, and answers 409 saying how it ended afterwards', async () => {
    const id = await startSession()
    const end = base({ session_id: id })
    const res = await post('/sessions.end', end)
    expect(res.status).toBe(200)
    const output = await json(res)
    expect(validateSessionManagerEndOutput.check(output)).toBe(true)
    expect(output.reason).toBe('explicit')
    expect(await json(post('/sessions.end', end))).toEqual(output)
    const conflict = await expectError(
      await post('/sessions.end', base({ session_id: id })),
      409,
      'session_ended',
    )
    expect(conflict.details).toMatchObject({ reason: 'explicit' })
    await expectError(await post('/sessions.touch', base({ session_id: id })), 409, 'session_ended')
  })

  it('answers 404 alike for an unknown session and for another user’s session', async () => {
    const id = await startSession()
    const unknown = await expectError(
      await post('/sessions.end', base({ session_id: recordId() })),
      404,
      'session_not_found',
    )
    const foreign = await expectError(
      await post('/sessions.end', base({ session_id: id, user_id: 'user-2' })),
      404,
      'session_not_found',
    )
    expect(unknown).toEqual(foreign)
  })

  it('touches an open session', async () => {
    const id = await startSession()
    const res = await post('/sessions.touch', base({ session_id: id }))
    expect(res.status).toBe(200)
    expect(await json(res)).toMatchObject({ event: 'session.touch', session_id: id })
  })
})

describe('read side', () => {
  it('describes a session and pages its timeline for auditors only', async () => {
    const id = await startSession()
    await post('/sessions.touch', base({ session_id: id }))
    await post('/sessions.end', base({ session_id: id }))
    const summary = await get(`/sessions/${id}`)
    expect(await json(summary)).toMatchObject({
      session_id: id,
      status: 'ended',
      end_reason: 'explicit',
      event_count: 3,
    })
    const page1 = await json(get(`/sessions/${id}/timeline?limit=2`))
    expect(page1.events.map((e: { event: string }) => e.event)).toEqual(['session.start', 'session.touch'])
    const page2 = await json(get(`/sessions/${id}/timeline?limit=2&cursor=${page1.next_cursor}`))
    expect(page2).toMatchObject({ events: [{ event: 'session.end' }], next_cursor: null })
    await expectError(await get(`/sessions/${id}`, CALLER), 403, 'forbidden')
  })

  it('answers 404 for an unknown session, 400 for a malformed id or page', async () => {
    await expectError(await get(`/sessions/${recordId()}`), 404, 'session_not_found')
    await expectError(await get('/sessions/not-a-ulid/timeline'), 400, 'session_id_invalid')
    const id = await startSession()
    await expectError(await get(`/sessions/${id}/timeline?limit=0`), 400, 'validation_failed')
  })

  it('has no route that returns a current session for a user', async () => {
    await startSession()
    for (const path of [
      '/sessions',
      '/sessions/current',
      '/sessions?user_id=user-1',
      '/users/user-1/session',
    ]) {
      const res = await get(path)
      expect(res.status, path).not.toBe(200)
    }
  })

  it('serves health, readiness and an OpenAPI 3.1 document without a token', async () => {
    expect((await app.request('/healthz')).status).toBe(200)
    expect(await json(app.request('/readyz'))).toMatchObject({ status: 'ready' })
    const doc = await json(app.request('/openapi.json'))
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/sessions.start', '/sessions.end', '/sessions.touch', '/export', '/readyz']),
    )
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['SessionManagerStartInput', 'SessionManagerEndOutput', 'ErrorResponse']),
    )
    await expectError(await app.request('/nope'), 404, 'not_found')
  })
})

describe('without tokens (loopback development)', () => {
  it('serves callers and auditors without authentication', async () => {
    await boot(false)
    const res = await app.request('/sessions.start', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(base()),
    })
    expect(res.status).toBe(201)
  })
})
