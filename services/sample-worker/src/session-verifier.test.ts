import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { startWorker } from './server.js'
import { createSessionVerifier } from './session-verifier.js'

const OPEN = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const ENDED = '01JNC3G8Z9X7W6V5T4S3R2Q1P1'
const UNKNOWN = '01JNC3G8Z9X7W6V5T4S3R2Q1P2'

/** A stand-in session-manager `GET /sessions/{id}` that counts what it is asked. */
function fakeManager(expiresAt = '2099-01-01T00:00:00.000Z') {
  const asked: string[] = []
  const headers: (string | null)[] = []
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const id = String(input).split('/').pop()!
    asked.push(id)
    headers.push(new Headers(init?.headers).get('authorization'))
    if (id === OPEN) return Response.json({ session_id: id, status: 'open', expires_at: expiresAt })
    if (id === ENDED) return Response.json({ session_id: id, status: 'ended', end_reason: 'explicit' })
    return Response.json({ error: 'session_not_found', message: '' }, { status: 404 })
  }) as typeof fetch
  return { asked, headers, fetchImpl }
}

describe('createSessionVerifier', () => {
  it('accepts an open session, rejects an ended or unknown one, with the auditor token', async () => {
    const manager = fakeManager()
    const verify = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      token: 'auditor-token-0123456789',
      fetchImpl: manager.fetchImpl,
    })
    expect(await verify(OPEN)).toBe(true)
    expect(await verify(ENDED)).toBe('session_ended')
    expect(await verify(UNKNOWN)).toBe('session_not_found')
    expect(manager.headers).toEqual(Array(3).fill('Bearer auditor-token-0123456789'))
  })

  it('answers repeated checks from its cache until the ttl passes; an ended session stays ended', async () => {
    const manager = fakeManager()
    let now = 1_000
    const verify = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      fetchImpl: manager.fetchImpl,
      ttlMs: 5_000,
      now: () => now,
    })
    for (let i = 0; i < 10; i++) {
      await verify(OPEN)
      await verify(ENDED)
    }
    expect(manager.asked).toEqual([OPEN, ENDED])
    now += 5_001
    expect(await verify(OPEN)).toBe(true)
    expect(await verify(ENDED)).toBe('session_ended')
    expect(manager.asked).toEqual([OPEN, ENDED, OPEN])
  })

  it('never believes "open" past the session expiry', async () => {
    const manager = fakeManager(new Date(2_000).toISOString())
    let now = 1_000
    const verify = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      fetchImpl: manager.fetchImpl,
      now: () => now,
    })
    await verify(OPEN)
    now = 2_000
    await verify(OPEN)
    expect(manager.asked).toEqual([OPEN, OPEN])
  })

  it('keeps at most maxEntries sessions, forgetting the least recently used', async () => {
    const manager = fakeManager()
    const verify = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      fetchImpl: manager.fetchImpl,
      maxEntries: 2,
    })
    await verify(OPEN)
    await verify(ENDED)
    await verify(OPEN) // OPEN is now the most recently used
    await verify(UNKNOWN) // evicts ENDED
    expect(manager.asked).toEqual([OPEN, ENDED, UNKNOWN])
    await verify(OPEN)
    await verify(ENDED)
    expect(manager.asked).toEqual([OPEN, ENDED, UNKNOWN, ENDED])
  })

  it('answers upstream_unavailable (not "accepted") when the session-manager fails or is unreachable', async () => {
    const down = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      fetchImpl: (async () => {
        throw new TypeError('fetch failed')
      }) as typeof fetch,
    })
    expect(await down(OPEN)).toMatchObject({ code: 'upstream_unavailable' })
    const failing = createSessionVerifier({
      sessionManagerUrl: 'http://sm',
      fetchImpl: (async () => new Response('', { status: 503 })) as typeof fetch,
    })
    expect(await failing(OPEN)).toMatchObject({
      code: 'upstream_unavailable',
      message: expect.stringContaining('503'),
    })
  })
})

describe('the worker with the verify hook', () => {
  it('answers /infer for an ended session with 409 session_ended and records nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-verify-'))
    const dataDir = join(dir, 'worker')
    const manager = fakeManager()
    const worker = await startWorker({
      port: 0,
      host: '127.0.0.1',
      dataDir,
      logger: pino({ level: 'silent' }),
      app: {
        verify: createSessionVerifier({ sessionManagerUrl: 'http://sm', fetchImpl: manager.fetchImpl }),
      },
    })
    try {
      const res = await fetch(`${worker.url}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': ENDED },
        body: JSON.stringify({
          schema_version: '1.1',
          record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1AA',
          user_id: 'user-42',
          timestamp: '2026-03-01T12:00:00.000Z',
          source: 'ui',
          origin: 'system',
          text: 'hello',
        }),
      })
      expect(res.status).toBe(409)
      expect(((await res.json()) as { error: string }).error).toBe('session_ended')
      expect(await readFile(join(dataDir, 'events', 'events-000001.jsonl'), 'utf8').catch(() => '')).toBe('')
    } finally {
      await worker.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
