import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PowerLossFileSystem } from '@care/event-log/testing'
import { compileValidator, ERROR_CODES, ErrorResponse } from '@care/schemas'
import {
  deepNesting,
  fcRuns,
  hostileStrings,
  hostileValues,
  jsonBodiesOf,
  malformedFramings,
  rawExchange,
  scaled,
  statusesOf,
  timeoutMs,
} from '@care/test-kit'
import fc from 'fast-check'
import { pino } from 'pino'
import { monotonicFactory } from 'ulid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifySessionLog } from './audit/session-log-rules.js'
import { loadConfig } from './config.js'
import {
  AUDITOR_TOKEN,
  type BootedService,
  bootService,
  CALLER_TOKEN,
  DATA_DIR,
  freshDisk,
} from './faults/test-support/service-harness.js'
import { type RunningSessionManager, startSessionManager } from './server.js'

const validateError = compileValidator(ErrorResponse)
const newId = monotonicFactory()

/** Every status each route documents (openapi.ts). A healthy store never answers 503, nothing 500. */
const DOCUMENTED: Record<string, number[]> = {
  '/sessions.start': [200, 201, 400, 401, 403, 413, 415, 422],
  '/sessions.end': [200, 400, 401, 403, 404, 409, 413, 415, 422],
  '/sessions.touch': [200, 400, 401, 403, 404, 409, 413, 415, 422],
  read: [200, 400, 401, 403, 404, 405],
  other: [200, 404, 405], // 405 + Allow: a documented route asked with another method
}

let disk: PowerLossFileSystem
let booted: BootedService
const openSessions: string[] = []
/** record_ids of events the log holds, so a replayed answer is told apart from a new event. */
const storedRecordIds = new Set<string>()

// Lines counted so far per segment file, so each check reads only the bytes appended since the last.
const counted = new Map<string, { size: number; lines: number }>()

function logLines(): number {
  let lines = 0
  const dir = `${DATA_DIR}/events`
  for (const name of disk.fileNames(dir)) {
    if (!name.endsWith('.jsonl')) continue
    const seen = counted.get(name) ?? { size: 0, lines: 0 }
    const fresh = disk.contents(`${dir}/${name}`, seen.size) ?? Buffer.alloc(0)
    for (let at = fresh.indexOf(0x0a); at !== -1; at = fresh.indexOf(0x0a, at + 1)) seen.lines++
    seen.size += fresh.length
    counted.set(name, seen)
    lines += seen.lines
  }
  return lines
}

function validBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: '1.1',
    record_id: newId(),
    user_id: 'user-1',
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...extra,
  }
}

interface Probe {
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Uint8Array
}

/**
 * Sends one request and checks the promises every answer keeps: a documented status, the shared
 * error shape for every error, never 5xx, and exactly one new log line per newly accepted event.
 */
async function expectWellBehaved(probe: Probe): Promise<Response> {
  const before = logLines()
  const res = await booted.app.request(probe.path, {
    method: probe.method,
    headers: probe.headers,
    ...(probe.body === undefined ? {} : { body: probe.body }),
  })
  const text = await res.text()
  const where = `${probe.method} ${probe.path} -> ${res.status} ${text.slice(0, 300)}`
  const pathname = probe.path.split('?')[0]!
  const route =
    probe.method === 'POST' && DOCUMENTED[pathname]
      ? pathname
      : /^\/sessions\/[^/]*(\/timeline)?$/.test(pathname)
        ? 'read'
        : 'other'
  expect(DOCUMENTED[route], where).toContain(res.status)
  let body: unknown
  expect(() => {
    body = JSON.parse(text)
  }, where).not.toThrow()
  if (res.status >= 400) {
    expect(validateError.check(body), where).toBe(true)
    const code = (body as { error: keyof typeof ERROR_CODES }).error
    expect(ERROR_CODES[code]?.status, where).toBe(res.status)
  }
  let added = 0
  if (probe.method === 'POST' && res.status < 300) {
    const recordId = (body as { record_id: string }).record_id
    if (!storedRecordIds.has(recordId)) added = 1
    storedRecordIds.add(recordId)
    if (probe.path === '/sessions.start' && res.status === 201)
      openSessions.push((body as { session_id: string }).session_id)
  }
  expect(logLines() - before, where).toBe(added)
  return res
}

// --- generators -------------------------------------------------------------------------------

const hostileString = hostileStrings(['\r\n{"event":"session.end"}\r\n'])
const hostileValue = hostileValues(hostileString)

const forbiddenKeyed = fc
  .tuple(
    fc.constantFrom('__proto__', 'constructor', 'prototype'),
    fc.jsonValue({ maxDepth: 1 }),
    fc.boolean(),
  )
  .map(([key, value, nested]) => {
    const inner = `{${JSON.stringify(key)}:${JSON.stringify(value)}}`
    const base = JSON.stringify(validBody())
    return nested ? `${base.slice(0, -1)},"metadata":${inner}}` : `${inner.slice(0, -1)},${base.slice(1)}`
  })

/** A valid body with one field replaced, removed or added, as raw JSON text. */
const mutatedBody = (path: string) =>
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
        'metadata',
        'seq',
        'hash',
        'extra',
      ),
      action: fc.constantFrom('replace', 'delete', 'keep'),
      value: hostileValue,
      session: fc.nat(),
    })
    .map(({ field, action, value, session }) => {
      const body = validBody()
      if (path !== '/sessions.start' && openSessions.length > 0)
        body.session_id = openSessions[session % openSessions.length]
      if (action === 'replace') body[field] = value
      if (action === 'delete') delete body[field]
      return JSON.stringify(body)
    })

const rawBody = (path: string) =>
  fc.oneof(
    { weight: 4, arbitrary: mutatedBody(path) },
    { weight: 1, arbitrary: forbiddenKeyed },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  )

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  '',
)

const authorization = fc.constantFrom(
  `Bearer ${CALLER_TOKEN}`,
  `Bearer ${CALLER_TOKEN}`,
  `Bearer ${AUDITOR_TOKEN}`,
  'Bearer nope-nope-nope-nope',
  `bearer ${CALLER_TOKEN}`,
  '',
  `Bearer ${'x'.repeat(600)}`,
)

const postProbe = fc
  .constantFrom('/sessions.start', '/sessions.end', '/sessions.touch')
  .chain((path) =>
    fc.record({
      path: fc.constant(path),
      body: rawBody(path),
      type: contentType,
      auth: authorization,
      sessionHeader: fc.option(
        fc.oneof(fc.constant('01JNC3G8Z9X7W6V5T4S3R2Q1P0'), fc.string({ maxLength: 30 })),
        {
          nil: undefined,
        },
      ),
    }),
  )
  .map(
    ({ path, body, type, auth, sessionHeader }): Probe => ({
      method: 'POST',
      path,
      headers: {
        ...(type ? { 'content-type': type } : {}),
        ...(auth ? { authorization: auth } : {}),
        ...(sessionHeader !== undefined && /^[\x20-\x7e]*$/.test(sessionHeader)
          ? { 'x-session-id': sessionHeader }
          : {}),
      },
      body,
    }),
  )

const pathSegment = fc.oneof(
  fc.constant('01JNC3G8Z9X7W6V5T4S3R2Q1P0'),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom('..', '%2e%2e', '%00', '__proto__', 'constructor'),
)

const getProbe = fc
  .record({
    kind: fc.constantFrom('summary', 'timeline', 'other'),
    segment: fc.oneof(
      pathSegment,
      fc.nat().map((n) => openSessions[n % Math.max(1, openSessions.length)] ?? 'x'),
    ),
    query: fc.dictionary(
      fc.constantFrom('cursor', 'limit', 'x'),
      fc.oneof(fc.nat().map(String), fc.string({ maxLength: 20 })),
    ),
    auth: authorization,
    method: fc.constantFrom('GET', 'GET', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'),
    other: fc.constantFrom(
      '/healthz',
      '/readyz',
      '/openapi.json',
      '/sessions',
      '/sessions.start',
      '/',
      '/sessions.current',
    ),
  })
  .map(({ kind, segment, query, auth, method, other }): Probe => {
    const search = new URLSearchParams(query).toString()
    const path =
      kind === 'other'
        ? other
        : `/sessions/${segment}${kind === 'timeline' ? '/timeline' : ''}${search ? `?${search}` : ''}`
    return { method, path, headers: auth ? { authorization: auth } : {} }
  })

// --- tests ------------------------------------------------------------------------------------

beforeAll(async () => {
  disk = await freshDisk()
  booted = await bootService({ fs: disk, dir: DATA_DIR, tokens: true })
  for (let i = 0; i < 3; i++) {
    await expectWellBehaved({
      method: 'POST',
      path: '/sessions.start',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}` },
      body: JSON.stringify(validBody()),
    })
  }
})

afterAll(async () => {
  expect(await booted.stop()).toBeUndefined()
  // However hostile the traffic, the log on disk verifies.
  expect(await verifySessionLog(DATA_DIR, { fs: disk })).toMatchObject({ ok: true, records: logLines() })
})

describe('session-manager HTTP under hostile input (fast-check)', () => {
  it(
    'answers every POST with a documented status and the shared error shape, never 5xx; one log line per accepted event',
    async () => {
      await fc.assert(
        fc.asyncProperty(postProbe, async (probe) => {
          await expectWellBehaved(probe)
        }),
        fcRuns('http fuzz POST', 600, 20_000),
      )
    },
    timeoutMs(60_000),
  )

  it(
    'answers every read and unknown route with a documented status and the shared error shape',
    async () => {
      await fc.assert(
        fc.asyncProperty(getProbe, async (probe) => {
          // Reads never add log lines; HEAD/OPTIONS bodies are empty, so only check status there.
          if (probe.method === 'HEAD') {
            const res = await booted.app.request(probe.path, { method: 'HEAD', headers: probe.headers })
            expect(res.status).toBeLessThan(500)
            return
          }
          await expectWellBehaved(probe)
        }),
        fcRuns('http fuzz GET', 400, 10_000),
      )
    },
    timeoutMs(60_000),
  )

  it(
    'keeps one event per line whatever control characters metadata carries (log injection)',
    async () => {
      const nasty = [
        'a\r\nb',
        '\u001b[2J\u001b[31m',
        'nul\u0000nul',
        'ls\u2028ps\u2029',
        '\n{"seq":1}\n',
        '\t\b\f\v',
      ]
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(
            fc.constantFrom('note', 'device', 'room', 'caregiver_note', 'x1'),
            fc.oneof(fc.constantFrom(...nasty), fc.string({ unit: 'binary', maxLength: 40 })),
            { minKeys: 1, maxKeys: 6 },
          ),
          async (metadata) => {
            const res = await expectWellBehaved({
              method: 'POST',
              path: '/sessions.start',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}` },
              body: JSON.stringify(validBody({ metadata })),
            })
            expect(res.status).toBe(201)
          },
        ),
        fcRuns('log injection', 200, 5000),
      )
      for (const [name, bytes] of disk.snapshot(`${DATA_DIR}/events`)) {
        if (!name.endsWith('.jsonl')) continue
        // Raw CR, ESC and NUL never reach the file: JSON escapes them inside the one line.
        expect(bytes.includes(0x0d)).toBe(false)
        expect(bytes.includes(0x1b)).toBe(false)
        expect(bytes.includes(0x00)).toBe(false)
      }
      expect(await verifySessionLog(DATA_DIR, { fs: disk })).toMatchObject({ ok: true, records: logLines() })
    },
    timeoutMs(60_000),
  )
})

// --- real sockets: lying Content-Length, chunked bodies over the limit ---------------------------

describe('session-manager over a real socket (startSessionManager)', () => {
  let running: RunningSessionManager
  let port: number
  let dataDir: string

  const fileLines = async () => {
    let lines = 0
    for (const name of await readdir(join(dataDir, 'events'))) {
      if (!name.endsWith('.jsonl')) continue
      for (const byte of await readFile(join(dataDir, 'events', name))) if (byte === 0x0a) lines++
    }
    return lines
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'care-fuzz-'))
    const config = loadConfig({
      PORT: '0',
      CARE_DATA_DIR: dataDir,
      CARE_CALLER_TOKENS: CALLER_TOKEN,
      CARE_AUDITOR_TOKENS: AUDITOR_TOKEN,
    })
    running = await startSessionManager(config, { logger: pino({ level: 'silent' }) })
    await running.ready
    port = running.port
  })
  afterAll(async () => {
    await running.stop()
    expect((await verifySessionLog(dataDir)).ok).toBe(true)
    await rm(dataDir, { recursive: true, force: true })
  })

  const head = (framing: string) =>
    `POST /sessions.start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CALLER_TOKEN}\r\nContent-Type: application/json\r\n${framing}\r\n`

  const cases = malformedFramings(head, () => JSON.stringify(validBody()))

  it.each(cases)(
    'answers %s with a documented 4xx in the shared error shape, and stays up',
    async (_name, build) => {
      const before = await fileLines()
      const reply = await rawExchange(port, build())
      const statuses = statusesOf(reply)
      const bodies = jsonBodiesOf(reply)
      // Every response carries the shared error shape, including those node's HTTP parser makes.
      expect(statuses.length, 'no answer at all').toBeGreaterThan(0)
      expect(bodies.length, reply.slice(0, 600)).toBe(statuses.length)
      for (const [i, status] of statuses.entries()) {
        expect([400, 413, 415], reply.slice(0, 600)).toContain(status)
        expect(validateError.check(bodies[i]), JSON.stringify(bodies[i])).toBe(true)
        expect(ERROR_CODES[(bodies[i] as { error: keyof typeof ERROR_CODES }).error].status).toBe(status)
      }
      expect(await fileLines()).toBe(before)
      const health = await fetch(`http://127.0.0.1:${port}/healthz`)
      expect(health.status).toBe(200)
    },
    10_000,
  )

  it(
    'stays up with bounded memory under a burst of hostile requests',
    async () => {
      const hostile = cases.map(([, build]) => build())
      const rounds = scaled(20, 200)
      const heapBefore = process.memoryUsage().heapUsed
      for (let round = 0; round < rounds; round++) {
        await Promise.all(hostile.map((request) => rawExchange(port, request, 2000)))
      }
      const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024
      expect(grownMb).toBeLessThan(64)
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
    },
    timeoutMs(60_000),
  )
})
