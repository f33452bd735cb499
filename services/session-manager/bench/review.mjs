#!/usr/bin/env node
// Review page benchmark (run after `pnpm build`): node services/session-manager/bench/review.mjs
//
// Server time of the review page (issue #16), measured in-process through the app (app.request: routing,
// catalog reads, rendering; no network), on the embedded store:
//   1. the search page for one user with BENCH_SESSIONS sessions (default 10,000; plus as many of other
//      users interleaved), first page and a page deep in the history (by its cursor); goal < 200 ms
//   2. a session page with 1,000 entries (500 lifecycle events + 500 worker records); goal < 100 ms
// The log is written with the real EventLog API (group commit). Figures go to docs/benchmarks.md.
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const dist = resolve(here, '../dist')
if (!existsSync(join(dist, 'review/routes.js'))) {
  console.error('bench/review.mjs: build first (pnpm --filter @care/session-manager build)')
  process.exit(2)
}
const load = (path) => import(pathToFileURL(join(dist, path)).href)
const { EventLog } = await import('@care/event-log')
const { FileEventStore } = await load('store/file-event-store.js')
const { LookupReviewCatalog } = await load('review/catalog.js')
const { createSessionManagerApp } = await load('app.js')
const { tokenDigest } = await load('config.js')

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 20)
/** Segment size of the bench log: 4 MiB, so the 10,000 sessions span several sealed segments. */
const SEGMENT_BYTES = 4 * 1024 * 1024
const { indexKeysOf, recordTimeOf } = await load('store/index-keys.js')
const dir = await mkdtemp(join(tmpdir(), 'care-review-bench-'))
const BASE = Date.parse('2026-03-01T00:00:00.000Z')
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
let counter = 0
function ulid(time) {
  let t = time
  let head = ''
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD[t % 32] + head
    t = Math.floor(t / 32)
  }
  let n = ++counter
  let tail = ''
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[n % 32] + tail
    n = Math.floor(n / 32)
  }
  return head + tail
}
const iso = (ms) => new Date(ms).toISOString()
const common = (time, sessionId, userId) => ({
  schema_version: '1.1',
  record_id: ulid(time),
  user_id: userId,
  session_id: sessionId,
  timestamp: iso(time),
  source: 'session_manager',
  origin: 'human',
  performer_id: 'caregiver-1',
})
const start = (time, sessionId, userId) => ({
  ...common(time, sessionId, userId),
  event: 'session.start',
  input_record_id: ulid(time),
  input_source: 'ui',
  idle_timeout_ms: 1_800_000,
  max_duration_ms: 86_400_000,
})
const end = (time, sessionId, userId, startedAt) => ({
  ...common(time, sessionId, userId),
  event: 'session.end',
  reason: 'explicit',
  started_at: iso(startedAt),
  ended_at: iso(time),
})
const touch = (time, sessionId, userId) => ({ ...common(time, sessionId, userId), event: 'session.touch' })

// 0. The log: SESSIONS sessions of bench-user interleaved with as many of other users, then one long session.
let t0 = performance.now()
const longId = ulid(BASE + SESSIONS * 2 * 60_000)
{
  const { log } = await EventLog.open({
    dir,
    maxFileBytes: SEGMENT_BYTES,
    indexKeys: indexKeysOf,
    recordTime: recordTimeOf,
  })
  let pending = []
  const flush = async () => {
    await Promise.all(pending)
    pending = []
  }
  for (let i = 0; i < SESSIONS * 2; i++) {
    const user = i % 2 === 0 ? 'bench-user' : `other-${i % 97}`
    const time = BASE + i * 60_000
    const id = ulid(time)
    pending.push(log.append(start(time, id, user)), log.append(end(time + 30_000, id, user, time)))
    if (pending.length >= 2000) await flush()
  }
  await flush()
  const longStart = BASE + SESSIONS * 2 * 60_000
  await log.append(start(longStart, longId, 'long-user'))
  for (let i = 1; i < 499; i++) pending.push(log.append(touch(longStart + i * 1000, longId, 'long-user')))
  await flush()
  await log.append(end(longStart + 499_000, longId, 'long-user', longStart))
  const worker = []
  for (let i = 0; i < 500; i++) {
    worker.push(
      JSON.stringify({
        session_id: longId,
        user_id: 'long-user',
        timestamp: iso(longStart + i * 1000 + 500),
        source: 'sample_worker',
        origin: 'system',
        event: 'infer.output',
        output: { label: `label ${i}` },
      }),
    )
  }
  await writeFile(join(dir, 'worker.jsonl'), `${worker.join('\n')}\n`)
  await log.close()
}
console.log(`log written: ${SESSIONS * 4 + 500} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

// 1. The service's app over the recovered store, signed in.
t0 = performance.now()
const store = await FileEventStore.open({ dir, maxFileBytes: SEGMENT_BYTES }, () => {})
console.log(`recovered in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
// Lookups go through the store's segment indexes: sealed segments answer from their sidecar index files,
// the active one from memory (SEGMENT_BYTES keeps most of the log in sealed segments).
const catalog = new LookupReviewCatalog(store)
const REVIEWER = 'bench-reviewer-token-000'
const app = createSessionManagerApp({
  sessions: () => undefined,
  config: { tokens: new Map(), bodyLimitBytes: 16 * 1024 },
  logger: { error() {}, info() {} },
  review: {
    catalog: () => catalog,
    audit: () => undefined,
    reviewerTokens: new Set([tokenDigest(REVIEWER)]),
    workerLogs: [join(dir, 'worker.jsonl')],
  },
})
const signIn = await app.request('/review/sign-in', {
  method: 'POST',
  headers: { origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token: REVIEWER }),
})
const cookie = signIn.headers.get('set-cookie').split(';')[0]

async function timed(name, path, check) {
  const times = []
  for (let i = 0; i < RUNS; i++) {
    const began = performance.now()
    const res = await app.request(path, { headers: { cookie } })
    const html = await res.text()
    times.push(performance.now() - began)
    if (res.status !== 200 || !check(html)) throw new Error(`${name}: unexpected answer ${res.status}`)
  }
  times.sort((a, b) => a - b)
  const median = times[Math.floor(times.length / 2)]
  const p95 = times[Math.min(times.length - 1, Math.floor(times.length * 0.95))]
  console.log(`${name}: median ${median.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms (${RUNS} runs)`)
  return { median, p95 }
}

const first = await timed('search, first page of bench-user', '/review/sessions?user_id=bench-user', (html) =>
  html.includes('25 sessions on this page'),
)
// A page deep in the history: follow the cursors to page 40 (sessions 976-1000), then time that page.
let path = '/review/sessions?user_id=bench-user'
for (let page = 1; page < 40; page++) {
  const html = await (await app.request(path, { headers: { cookie } })).text()
  path = /href="(\/review\/sessions\?[^"]*cursor=[^"]*)"/.exec(html)[1].replaceAll('&amp;', '&')
}
const deep = await timed('search, page 40 of bench-user', path, (html) =>
  html.includes('25 sessions on this page'),
)
const session = await timed('session page, 1,000 entries', `/review/sessions/${longId}`, (html) =>
  html.includes('1000 entries in chronological order'),
)
await store.close()
await rm(dir, { recursive: true, force: true })
console.log(
  JSON.stringify({
    sessions: SESSIONS,
    search_first: first,
    search_page_40: deep,
    session_page_1000: session,
  }),
)
