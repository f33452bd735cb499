import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type LogFileSystem, readLog, verifyLog } from '@care/event-log'
import { FaultyFileSystem } from '@care/event-log/testing'
import fc from 'fast-check'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { type RunningWorker, startWorker } from './server.js'
import { validateWorkerEvent, type WorkerEvent } from './worker-records.js'

const SESSION = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const silent = pino({ level: 'silent' })
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function start(options: { fs?: LogFileSystem; downstreamUrl?: string } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'sample-worker-'))
  const logPath = join(dir, 'worker')
  const worker: RunningWorker = await startWorker({
    port: 0,
    host: '127.0.0.1',
    dataDir: logPath,
    logger: silent,
    ...(options.fs ? { fs: options.fs } : {}),
    ...(options.downstreamUrl ? { downstreamUrl: options.downstreamUrl } : {}),
  })
  cleanups.push(async () => {
    await worker.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { url: worker.url, logPath }
}

/** The worker's records (chain fields removed), read back through the log's own hash-checked reader. */
async function linesOf(dataDir: string): Promise<WorkerEvent[]> {
  const records: WorkerEvent[] = []
  for await (const { record } of readLog<WorkerEvent>(dataDir)) {
    const { seq: _seq, prev_hash: _prev, hash: _hash, ...event } = record
    records.push(event)
  }
  return records
}

function inferInput(overrides: Record<string, unknown> = {}) {
  return {
    schema_version: '1.1',
    record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1AA',
    user_id: 'user-42',
    timestamp: '2026-03-01T12:00:00.000Z',
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-7',
    text: 'Is it time for my medication?',
    ...overrides,
  }
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

describe('sample worker: session propagation end to end', () => {
  it('returns 400 session_id_missing and writes no record when /infer has no session_id', async () => {
    const { url, logPath } = await start()
    const res = await post(`${url}/infer`, inferInput())
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'session_id_missing' })
    expect(await linesOf(logPath)).toEqual([])
  })

  it('tags every record, the downstream step and the answer with the propagated session_id', async () => {
    const { url, logPath } = await start()
    const res = await post(`${url}/infer`, inferInput(), { 'x-session-id': SESSION })
    expect(res.status).toBe(200)
    const output = (await res.json()) as WorkerEvent
    expect(output).toMatchObject({
      session_id: SESSION,
      event: 'infer.output',
      input_record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1AA',
      output: { label: 'question', annotations: { words: 6, question: true } },
    })
    const lines = await linesOf(logPath)
    expect(lines.map((line) => line.event)).toEqual(['infer.received', 'annotate.done', 'infer.output'])
    for (const line of lines) {
      expect(validateWorkerEvent.validate(line)).toMatchObject({ ok: true })
      expect(line).toMatchObject({ session_id: SESSION, source: 'sample_worker', user_id: 'user-42' })
    }
    expect(new Set(lines.map((line) => line.record_id)).size).toBe(3)
    expect(lines[2]).toEqual(output)
    // Chained and checked by the same verifier as the session-manager's log.
    expect(
      await verifyLog(logPath, { rules: { kindField: 'event', timestampField: 'timestamp' } }),
    ).toMatchObject({
      ok: true,
      records: 3,
      events: { 'infer.received': 1, 'annotate.done': 1, 'infer.output': 1 },
    })
  })

  it('accepts the session_id in the body and sends it on as x-session-id to DOWNSTREAM_URL', async () => {
    const seen: IncomingHttpHeaders[] = []
    const downstream = createServer((req, res) => {
      seen.push(req.headers)
      req.resume()
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          session_id: req.headers['x-session-id'],
          annotations: { characters: 1, words: 1, question: false },
        }),
      )
    })
    await new Promise<void>((resolve) => downstream.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise((resolve) => downstream.close(() => resolve())))
    const { port } = downstream.address() as AddressInfo
    const { url } = await start({ downstreamUrl: `http://127.0.0.1:${port}/annotate` })
    const res = await post(`${url}/infer`, inferInput({ session_id: SESSION }))
    expect(res.status).toBe(200)
    expect(seen.map((headers) => headers['x-session-id'])).toEqual([SESSION])
  })

  it('never writes a record for a request whose x-session-id is not a ULID', async () => {
    const { url, logPath } = await start()
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFGHJKMNPQRSTVWXYZabcz-_ '), maxLength: 30 }),
        async (candidate) => {
          fc.pre(!/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/.test(candidate.trim()))
          const res = await post(`${url}/infer`, inferInput(), { 'x-session-id': candidate })
          expect(res.status).toBe(400)
          await res.arrayBuffer()
        },
      ),
      { numRuns: 40, interruptAfterTimeLimit: 10_000 },
    )
    expect(await linesOf(logPath)).toEqual([])
  })

  it('returns 503 upstream_unavailable when the downstream step does not answer', async () => {
    const { url, logPath } = await start({ downstreamUrl: 'http://127.0.0.1:9/annotate' })
    const res = await post(`${url}/infer`, inferInput(), { 'x-session-id': SESSION })
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([
      503,
      'upstream_unavailable',
    ])
    expect((await linesOf(logPath)).map((line) => line.event)).toEqual(['infer.received', 'infer.failed'])
  })
})

describe('sample worker: errors in the shared shape', () => {
  it('answers 503 storage_unavailable with Retry-After, never 2xx, when the log cannot be written', async () => {
    const fs = new FaultyFileSystem()
    fs.fail('write', { errno: 'ENOSPC', path: /events-\d+\.jsonl$/, times: 'forever' })
    const { url } = await start({ fs })
    const res = await post(`${url}/infer`, inferInput(), { 'x-session-id': SESSION })
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await res.json()).toMatchObject({ error: 'storage_unavailable' })
  })

  it('returns 400 validation_failed, writing nothing, for a human record without performer_id', async () => {
    const { url, logPath } = await start()
    const res = await post(`${url}/infer`, inferInput({ performer_id: undefined }), {
      'x-session-id': SESSION,
    })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({
      error: 'validation_failed',
      fields: [{ path: '/performer_id' }],
    })
    expect(await linesOf(logPath)).toEqual([])
  })

  it('returns 415 for a POST body that is not JSON', async () => {
    const { url } = await start()
    const res = await fetch(`${url}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-session-id': SESSION },
      body: 'hello',
    })
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([
      415,
      'unsupported_media_type',
    ])
  })

  it('returns 413 for a body over 16 KiB', async () => {
    const { url } = await start()
    const res = await post(`${url}/infer`, inferInput({ text: 'x'.repeat(17 * 1024) }), {
      'x-session-id': SESSION,
    })
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([413, 'payload_too_large'])
  })

  it('returns 400 malformed_json for a broken body', async () => {
    const { url } = await start()
    const res = await post(`${url}/infer`, '{"text":', { 'x-session-id': SESSION })
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([400, 'malformed_json'])
  })

  it('returns 404 JSON for unknown routes and answers /healthz without a session', async () => {
    const { url } = await start()
    const missing = await fetch(`${url}/nope`)
    expect([missing.status, await missing.json()]).toEqual([
      404,
      { error: 'not_found', message: 'No such route.' },
    ])
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
  })

  it('answers a POST route asked with GET with 405 method_not_allowed and Allow, like the session-manager', async () => {
    const { url } = await start()
    for (const path of ['/infer', '/steps/annotate']) {
      const res = await fetch(`${url}${path}`)
      expect(res.status).toBe(405)
      expect(res.headers.get('allow')).toBe('POST')
      expect(await res.json()).toMatchObject({ error: 'method_not_allowed' })
    }
    const head = await fetch(`${url}/healthz`, { method: 'DELETE' })
    expect([head.status, head.headers.get('allow')]).toEqual([405, 'GET, HEAD'])
  })
})
