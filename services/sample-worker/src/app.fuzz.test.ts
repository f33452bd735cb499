import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyLog } from '@care/event-log'
import { compileValidator, ERROR_CODES, ErrorResponse } from '@care/schemas'
import {
  deepNesting,
  fcRuns,
  hostileStrings,
  hostileValues,
  jsonBodiesOf,
  LONG,
  malformedFramings,
  rawExchange,
  statusesOf,
} from '@care/test-kit'
import fc from 'fast-check'
import { pino } from 'pino'
import { monotonicFactory } from 'ulid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningWorker, startWorker } from './server.js'
import { validateWorkerEvent } from './worker-records.js'

const validateError = compileValidator(ErrorResponse)
const newId = monotonicFactory()
const SESSION = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'

/** Statuses each route documents; with a healthy disk and downstream nothing is 5xx. */
const DOCUMENTED: Record<string, number[]> = {
  '/infer': [200, 400, 413, 415],
  '/steps/annotate': [200, 400, 413, 415],
  other: [200, 404, 405],
}
/** Lines one accepted request adds to the worker's JSONL log. */
const LINES_PER_SUCCESS: Record<string, number> = { '/infer': 3, '/steps/annotate': 1 }

let worker: RunningWorker
let dir: string
let dataDir: string
/** The worker's (single) log segment: every line is one chained record. */
let logPath: string

async function logText(): Promise<string> {
  return readFile(logPath, 'utf8').catch(() => '')
}
// Lines counted so far: each check reads only what was appended since the last one.
let countedBytes = 0
let countedLines = 0
async function lineCount(): Promise<number> {
  const handle = await open(logPath, 'r').catch(() => undefined)
  if (!handle) return 0
  try {
    const fresh = Buffer.alloc((await handle.stat()).size - countedBytes)
    await handle.read(fresh, 0, fresh.length, countedBytes)
    for (let at = fresh.indexOf(0x0a); at !== -1; at = fresh.indexOf(0x0a, at + 1)) countedLines++
    countedBytes += fresh.length
    return countedLines
  } finally {
    await handle.close()
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'worker-fuzz-'))
  dataDir = join(dir, 'worker')
  logPath = join(dataDir, 'events', 'events-000001.jsonl')
  worker = await startWorker({ port: 0, host: '127.0.0.1', dataDir, logger: pino({ level: 'silent' }) })
})

afterAll(async () => {
  await worker.close()
  // Every line is one whole, chained, schema-valid worker event, however hostile the traffic was.
  const lines = (await logText()).split('\n')
  expect(lines.pop()).toBe('')
  for (const line of lines) {
    const { seq: _seq, prev_hash: _prev, hash: _hash, ...event } = JSON.parse(line) as Record<string, unknown>
    expect(validateWorkerEvent.check(event), line).toBe(true)
  }
  expect(await verifyLog(dataDir)).toMatchObject({ ok: true, records: lines.length })
  await rm(dir, { recursive: true, force: true })
})

interface Probe {
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Uint8Array
}

async function expectWellBehaved(probe: Probe): Promise<Response> {
  const before = await lineCount()
  const res = await fetch(`${worker.url}${probe.path}`, {
    method: probe.method,
    headers: probe.headers,
    ...(probe.body === undefined ? {} : { body: probe.body }),
  })
  const text = await res.text()
  const where = `${probe.method} ${probe.path} -> ${res.status} ${text.slice(0, 300)}`
  const route = probe.method === 'POST' && DOCUMENTED[probe.path] ? probe.path : 'other'
  expect(DOCUMENTED[route], where).toContain(res.status)
  let body: unknown
  expect(() => {
    body = JSON.parse(text)
  }, where).not.toThrow()
  if (res.status >= 400) {
    expect(validateError.check(body), where).toBe(true)
    expect(ERROR_CODES[(body as { error: keyof typeof ERROR_CODES }).error]?.status, where).toBe(res.status)
  }
  const added = res.status === 200 ? (LINES_PER_SUCCESS[route] ?? 0) : 0
  expect((await lineCount()) - before, where).toBe(added)
  return res
}

function inferBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: '1.1',
    record_id: newId(),
    user_id: 'user-42',
    timestamp: '2026-03-01T12:00:00.000Z',
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-7',
    text: 'Is it time for my medication?',
    ...extra,
  }
}

function annotateBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { input_record_id: newId(), user_id: 'user-42', text: 'hello there', ...extra }
}

const hostileValue = hostileValues(hostileStrings(['\r\n{"event":"infer.output"}\r\n']))

const mutated = (path: string) =>
  fc
    .record({
      field: fc.constantFrom(
        'schema_version',
        'record_id',
        'user_id',
        'timestamp',
        'source',
        'origin',
        'performer_id',
        'session_id',
        'text',
        'input_record_id',
        'extra',
      ),
      action: fc.constantFrom('replace', 'delete', 'keep'),
      value: hostileValue,
    })
    .map(({ field, action, value }) => {
      const body = path === '/infer' ? inferBody() : annotateBody()
      if (action === 'replace') body[field] = value
      if (action === 'delete') delete body[field]
      return JSON.stringify(body)
    })

const forbiddenKeyed = fc
  .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.jsonValue({ maxDepth: 1 }))
  .map(
    ([key, value]) =>
      `{${JSON.stringify(key)}:${JSON.stringify(value)},${JSON.stringify(inferBody()).slice(1)}`,
  )

const postProbe = fc
  .constantFrom('/infer', '/steps/annotate')
  .chain((path) =>
    fc.record({
      path: fc.constant(path),
      body: fc.oneof(
        { weight: 4, arbitrary: mutated(path) },
        { weight: 1, arbitrary: forbiddenKeyed },
        { weight: 1, arbitrary: deepNesting },
        { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      ),
      type: fc.constantFrom(
        'application/json',
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/jsonx',
        '',
      ),
      session: fc.oneof(
        fc.constant(SESSION),
        fc.constant(SESSION),
        fc.constant(undefined),
        fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      ),
    }),
  )
  .map(
    ({ path, body, type, session }): Probe => ({
      method: 'POST',
      path,
      headers: { ...(type ? { 'content-type': type } : {}), ...(session ? { 'x-session-id': session } : {}) },
      body,
    }),
  )

describe('sample worker under hostile input (fast-check)', () => {
  it(
    'answers every POST with a documented status and the shared error shape, never 5xx; whole lines only for accepted work',
    async () => {
      await fc.assert(
        fc.asyncProperty(postProbe, async (probe) => {
          await expectWellBehaved(probe)
        }),
        fcRuns('worker http fuzz POST', 250, 10_000),
      )
    },
    LONG ? 1_800_000 : 120_000,
  )

  it(
    'answers other methods and routes with 404, 405 for a documented route (or 200 for /healthz) in the shared shape',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'POST'),
          fc.oneof(
            fc.constantFrom('/healthz', '/infer', '/steps/annotate', '/', '/steps', '/infer/x'),
            fc.webPath().map((p) => p || '/'),
          ),
          async (method, path) => {
            if (method === 'POST' && DOCUMENTED[path]) return
            await expectWellBehaved({ method, path, headers: {} })
          },
        ),
        fcRuns('worker http fuzz routes', 150, 5000),
      )
    },
    LONG ? 1_200_000 : 60_000,
  )

  it(
    'keeps one event per line whatever control characters the text carries (log injection)',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.constantFrom(
              'a\r\nb',
              '\u001b[2J',
              'nul\u0000nul',
              'ls\u2028ps',
              '\n{"event":"infer.output"}\n',
            ),
            fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
          ),
          async (text) => {
            fc.pre(text.trim().length > 0 || text.length > 0)
            await expectWellBehaved({
              method: 'POST',
              path: '/infer',
              headers: { 'content-type': 'application/json', 'x-session-id': SESSION },
              body: JSON.stringify(inferBody({ text })),
            })
          },
        ),
        fcRuns('worker log injection', 100, 3000),
      )
      const raw = await readFile(logPath)
      expect(raw.includes(0x0d)).toBe(false)
      expect(raw.includes(0x1b)).toBe(false)
      expect(raw.includes(0x00)).toBe(false)
    },
    LONG ? 1_200_000 : 60_000,
  )
})

describe('sample worker over a raw socket', () => {
  const head = (framing: string) =>
    `POST /infer HTTP/1.1\r\nHost: x\r\nX-Session-Id: ${SESSION}\r\nContent-Type: application/json\r\n${framing}\r\n`
  const cases = malformedFramings(head, () => JSON.stringify(inferBody()))

  it.each(cases)(
    'answers %s with a documented 4xx in the shared error shape, writes nothing, stays up',
    async (_name, build) => {
      const before = await lineCount()
      const port = Number(new URL(worker.url).port)
      const reply = await rawExchange(port, build())
      const statuses = statusesOf(reply)
      const bodies = jsonBodiesOf(reply)
      // Every response carries the shared error shape, including those node's HTTP parser makes.
      expect(statuses.length, 'no answer at all').toBeGreaterThan(0)
      expect(bodies.length, reply.slice(0, 500)).toBe(statuses.length)
      for (const [i, status] of statuses.entries()) {
        expect([400, 413], reply.slice(0, 500)).toContain(status)
        expect(validateError.check(bodies[i]), JSON.stringify(bodies[i])).toBe(true)
      }
      expect(await lineCount()).toBe(before)
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200)
    },
    10_000,
  )

  it(
    'stays up with bounded memory under a burst of hostile requests',
    async () => {
      const port = Number(new URL(worker.url).port)
      const heapBefore = process.memoryUsage().heapUsed
      for (let round = 0; round < (LONG ? 200 : 20); round++) {
        await Promise.all(cases.map(([, build]) => rawExchange(port, build(), 2000)))
      }
      expect((process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024).toBeLessThan(64)
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200)
    },
    LONG ? 1_200_000 : 60_000,
  )
})
