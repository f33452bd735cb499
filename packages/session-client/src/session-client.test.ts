import { ULID_PATTERN } from '@care/schemas'
import { afterEach, describe, expect, it } from 'vitest'
import { SessionClient } from './session-client.js'
import { SessionClientError } from './session-client-error.js'
import {
  AUDITOR_TOKEN,
  CALLER_TOKEN,
  runSessionManager,
  type SessionManagerProcess,
  scratchDir,
  waitReady,
} from './test-support/session-manager-process.js'

const ULID = new RegExp(ULID_PATTERN)
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function freshService(): Promise<{ service: SessionManagerProcess; dir: string }> {
  const scratch = scratchDir()
  cleanups.push(scratch.remove)
  const service = await runSessionManager(scratch.dir)
  cleanups.push(() => service.kill())
  await waitReady(service.url)
  return { service, dir: scratch.dir }
}

const person = { user_id: 'user-42', origin: 'human', performer_id: 'caregiver-7' } as const

describe('SessionClient against the real session-manager', () => {
  it('starts, touches, reads and ends a session with minted record_ids and timestamps', async () => {
    const { service } = await freshService()
    const caller = new SessionClient({ baseUrl: service.url, source: 'ui', token: CALLER_TOKEN })
    const auditor = new SessionClient({ baseUrl: service.url, source: 'ui', token: () => AUDITOR_TOKEN })

    const started = await caller.start({ ...person, metadata: { device: 'tablet' } })
    expect(started.event).toBe('session.start')
    expect(started.session_id).toMatch(ULID)
    expect(started.input_record_id).toMatch(ULID)
    expect(started.input_source).toBe('ui')
    expect(started.metadata).toEqual({ device: 'tablet' })

    const touched = await caller.touch({ ...person, session_id: started.session_id })
    expect(touched.event).toBe('session.touch')
    expect(touched.input_record_id).not.toBe(started.input_record_id)

    const open = await auditor.getSession(started.session_id)
    expect(open).toMatchObject({ session_id: started.session_id, status: 'open', event_count: 2 })

    const ended = await caller.end({ ...person, session_id: started.session_id })
    expect(ended).toMatchObject({ event: 'session.end', reason: 'explicit', session_id: started.session_id })

    const first = await auditor.timeline(started.session_id, { limit: 2 })
    expect(first.events.map((e) => e.event)).toEqual(['session.start', 'session.touch'])
    expect(first.next_cursor).not.toBeNull()
    const rest = await auditor.timeline(started.session_id, { cursor: first.next_cursor!, limit: 2 })
    expect(rest.events.map((e) => e.event)).toEqual(['session.end'])
    expect(rest.next_cursor).toBeNull()
    expect((await auditor.getSession(started.session_id)).status).toBe('ended')
  })

  it('rejects with a SessionClientError carrying the shared error code, without retrying a 4xx', async () => {
    const { service } = await freshService()
    let requests = 0
    const counting: typeof fetch = (input, init) => {
      requests++
      return fetch(input, init)
    }
    const caller = new SessionClient({
      baseUrl: service.url,
      source: 'ui',
      token: CALLER_TOKEN,
      fetch: counting,
    })
    const missing = await caller
      .touch({ ...person, session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0' })
      .catch((err: unknown) => err)
    expect(missing).toBeInstanceOf(SessionClientError)
    expect(missing).toMatchObject({ code: 'session_not_found', status: 404, attempts: 1 })
    expect((missing as SessionClientError).body?.error).toBe('session_not_found')
    expect(requests).toBe(1)

    const stranger = new SessionClient({ baseUrl: service.url, source: 'ui', token: 'not-a-known-token-123' })
    await expect(stranger.start(person)).rejects.toMatchObject({ code: 'unauthorized', status: 401 })
    const invalid = await caller.start({ user_id: 'user-42', origin: 'human' }).catch((err: unknown) => err)
    expect(invalid).toMatchObject({ code: 'validation_failed', status: 400 })
    expect((invalid as SessionClientError).body?.fields?.[0]?.path).toBe('/performer_id')
  })

  it('retries a start whose answer was lost across a service restart and gets the original session', async () => {
    const scratch = scratchDir()
    cleanups.push(scratch.remove)
    let service = await runSessionManager(scratch.dir)
    cleanups.push(() => service.kill())
    await waitReady(service.url)

    const sent: string[] = []
    const answers: number[] = []
    let firstAnswer: unknown
    // The first start reaches the service and is recorded; its answer is lost because the service is
    // SIGKILLed and restarted on the same data directory (on a new port) before the client reads it.
    const flaky: typeof fetch = async (input, init) => {
      sent.push(String(init?.body))
      const url = String(input).replace('http://session-manager.invalid', service.url)
      const response = await fetch(url, init)
      if (sent.length > 1) {
        answers.push(response.status)
        return response
      }
      firstAnswer = { status: response.status, body: await response.json() }
      await service.kill()
      service = await runSessionManager(scratch.dir)
      throw new TypeError('fetch failed', { cause: new Error('ECONNRESET') })
    }
    const client = new SessionClient({
      baseUrl: 'http://session-manager.invalid',
      source: 'ui',
      token: CALLER_TOKEN,
      fetch: flaky,
      retry: { baseDelayMs: 50, maxDelayMs: 1_000 },
    })

    const started = await client.start(person)
    expect(firstAnswer).toEqual({ status: 201, body: started })
    expect(answers.at(-1)).toBe(200)
    expect(answers.slice(0, -1).every((status) => status === 503)).toBe(true)
    expect(new Set(sent).size).toBe(1)
    const auditor = new SessionClient({ baseUrl: service.url, source: 'ui', token: AUDITOR_TOKEN })
    expect(await auditor.getSession(started.session_id)).toMatchObject({ status: 'open', event_count: 1 })
  })
})

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

const base = { baseUrl: 'http://127.0.0.1:9', source: 'ui' } as const

describe('SessionClient retries', () => {
  it('sends the same body after a 429 and a 503, waiting for Retry-After', async () => {
    const bodies: string[] = []
    const waits: number[] = []
    let last = Date.now()
    const replies = [
      answer(429, { error: 'too_many_requests', message: 'slow down' }, { 'retry-after': '1' }),
      answer(503, { error: 'storage_unavailable', message: 'later' }, { 'retry-after': '0' }),
    ]
    const client = new SessionClient({
      ...base,
      retry: { baseDelayMs: 10_000, maxDelayMs: 20_000 },
      fetch: async (_input, init) => {
        bodies.push(String(init?.body))
        waits.push(Date.now() - last)
        last = Date.now()
        return replies.shift() ?? answer(201, { session_id: 'S' })
      },
    })
    await expect(client.start(person)).resolves.toEqual({ session_id: 'S' })
    expect(bodies).toHaveLength(3)
    expect(new Set(bodies).size).toBe(1)
    expect(JSON.parse(bodies[0]!).record_id).toMatch(ULID)
    expect(waits[1]).toBeGreaterThanOrEqual(950)
    expect(waits[2]).toBeLessThan(900)
  })

  it('gives up after maxAttempts network errors with network_error', async () => {
    let calls = 0
    const client = new SessionClient({
      ...base,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
      fetch: async () => {
        calls++
        throw new TypeError('fetch failed')
      },
    })
    await expect(client.start(person)).rejects.toMatchObject({ code: 'network_error', attempts: 3 })
    expect(calls).toBe(3)
  })

  it('stops at the call timeout while the service keeps answering 503', async () => {
    const client = new SessionClient({
      ...base,
      timeoutMs: 300,
      retry: { maxAttempts: 100, baseDelayMs: 50, maxDelayMs: 50 },
      fetch: async () => answer(503, { error: 'not_ready', message: 'starting' }),
    })
    const started = Date.now()
    const failure = await client.start(person).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(SessionClientError)
    expect((failure as SessionClientError).code).toMatch(/^(not_ready|timeout)$/)
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('rejects with the caller signal reason when aborted during a hanging request', async () => {
    const controller = new AbortController()
    const client = new SessionClient({
      ...base,
      fetch: (_input, init) =>
        new Promise((_resolve, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
        ),
    })
    const call = client.start(person, { signal: controller.signal })
    controller.abort(new Error('user left'))
    await expect(call).rejects.toThrow('user left')
  })

  it('answers timeout when a request hangs past timeoutMs', async () => {
    const client = new SessionClient({
      ...base,
      fetch: (_input, init) =>
        new Promise((_resolve, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
        ),
    })
    await expect(client.getSession('01JNC3G8Z9X7W6V5T4S3R2Q1P0', { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'timeout',
    })
  })

  it('keeps a caller-given record_id and timestamp', async () => {
    let body = ''
    const client = new SessionClient({
      ...base,
      fetch: async (_input, init) => {
        body = String(init?.body)
        return answer(201, {})
      },
    })
    await client.start({
      ...person,
      record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
      timestamp: '2026-03-01T12:00:00.000Z',
    })
    expect(JSON.parse(body)).toMatchObject({
      schema_version: '1.1',
      record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
      timestamp: '2026-03-01T12:00:00.000Z',
      source: 'ui',
    })
  })
})
