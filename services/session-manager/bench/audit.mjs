#!/usr/bin/env node
// Audit benchmark (run after `pnpm build`): node services/session-manager/bench/audit.mjs
//
// On one generated log of BENCH_EVENTS lifecycle events (default 1,000,000, written with the real
// EventLog API) it measures, in one run:
//   1. verify throughput (chain + schema, as `care-sessions verify` runs it) against merely reading
//      and JSON.parse-ing the same files; goal: ratio >= 0.7
//   2. GET /sessions/{id}/timeline p99 against the real server (a child process) recovered from that
//      log, for random sessions; goal: p99 < 5 ms
//   3. peak RSS of `care-sessions export` (all events, to a file) in a child process; goal: < 150 MB
// BENCH_DIR=<dir> keeps the generated log there and reuses it on the next run; BENCH_ONLY=verify,timeline,export
// runs only those parts.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const dist = resolve(here, '../dist')
if (!existsSync(join(dist, 'cli/cli.js'))) {
  console.error('bench/audit.mjs: build first (pnpm --filter @care/session-manager build)')
  process.exit(2)
}
const { EventLog } = await import('@care/event-log')
const { verifyDataDir } = await import(pathToFileURL(join(dist, 'audit/verify.js')).href)

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 5_000)
const REQUEST_TIME_LIMIT_MS = 60_000
const keep = process.env.BENCH_DIR !== undefined
const dir = keep ? resolve(process.env.BENCH_DIR) : await mkdtemp(join(tmpdir(), 'care-audit-bench-'))
const results = {}
const only = new Set((process.env.BENCH_ONLY ?? 'verify,timeline,export').split(','))

function fmt(n, digits = 1) {
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

// ---------------------------------------------------------------------------------------------
// 0. The log: sessions interleaved (~200 open at a time), 0-4 touches each, realistic events.
const BASE = Date.parse('2026-03-01T00:00:00.000Z')
let idCounter = 0
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
function ulid(time) {
  let t = time
  let head = ''
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD[t % 32] + head
    t = Math.floor(t / 32)
  }
  let n = ++idCounter
  let tail = ''
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[n % 32] + tail
    n = Math.floor(n / 32)
  }
  return head + tail
}
const digest = (s) => `sha256:${createHash('sha256').update(s).digest('hex')}`

async function generate() {
  const marker = join(dir, 'bench-log.json')
  if (existsSync(marker)) {
    const info = JSON.parse(await readFile(marker, 'utf8'))
    if (info.events === EVENTS) return info
  }
  await rm(join(dir, 'events'), { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const started = performance.now()
  const { log } = await EventLog.open({ dir })
  const open = []
  const sample = []
  let sessions = 0
  let written = 0
  let pending = []
  let seed = 42
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  while (written < EVENTS) {
    const time = BASE + written * 10
    const timestamp = new Date(time).toISOString()
    const user = `resident-${Math.floor(rand() * 5000)}`
    const base = {
      schema_version: '1.1',
      record_id: ulid(time),
      timestamp,
      source: 'session_manager',
      origin: 'human',
      performer_id: `caregiver-${Math.floor(rand() * 300)}`,
    }
    let event
    const remaining = EVENTS - written
    if ((open.length < 200 && remaining > open.length * 6 + 1) || open.length === 0) {
      const sessionId = ulid(time)
      const touches = Math.floor(rand() * 5)
      open.push({ sessionId, user, touches, startedAt: timestamp })
      sessions++
      if (sample.length < 20_000) sample.push(sessionId)
      else if (rand() < 0.05) sample[Math.floor(rand() * sample.length)] = sessionId
      const input = ulid(time)
      event = {
        ...base,
        user_id: user,
        session_id: sessionId,
        event: 'session.start',
        input_record_id: input,
        input_source: 'ui',
        input_digest: digest(input),
        metadata: { device: 'kitchen-tablet' },
        idle_timeout_ms: 1_800_000,
        max_duration_ms: 86_400_000,
      }
    } else {
      const i = Math.floor(rand() * open.length)
      const session = open[i]
      const input = ulid(time)
      // Near the end every open session is ended, so the server finds none to expire on startup.
      if (session.touches > 0 && remaining > open.length) {
        session.touches--
        event = {
          ...base,
          user_id: session.user,
          session_id: session.sessionId,
          event: 'session.touch',
          input_record_id: input,
          input_source: 'ui',
          input_digest: digest(input),
        }
      } else {
        open[i] = open[open.length - 1]
        open.pop()
        const r = rand()
        const reason = r < 0.7 ? 'explicit' : r < 0.9 ? 'idle_timeout' : 'max_duration'
        event = {
          ...base,
          user_id: session.user,
          session_id: session.sessionId,
          event: 'session.end',
          reason,
          started_at: session.startedAt,
          ended_at: timestamp,
        }
        if (reason === 'explicit')
          Object.assign(event, { input_record_id: input, input_source: 'ui', input_digest: digest(input) })
        else {
          event.origin = 'system'
          delete event.performer_id
        }
      }
    }
    pending.push(log.append(event))
    written++
    // Many appends in flight share one write and one fdatasync (group commit).
    if (pending.length === 4096) {
      await Promise.all(pending)
      pending = []
    }
    if (written % 100_000 === 0) process.stderr.write(`\rgenerating: ${written.toLocaleString('en')} events`)
  }
  await Promise.all(pending)
  await log.close()
  process.stderr.write('\r\x1b[K')
  const info = { events: EVENTS, sessions, sample, seconds: (performance.now() - started) / 1000 }
  await writeFile(marker, JSON.stringify(info))
  return info
}

const info = await generate()
const segmentNames = (await readdir(join(dir, 'events'))).filter((n) => n.endsWith('.jsonl')).sort()
let bytes = 0
for (const name of segmentNames) bytes += (await stat(join(dir, 'events', name))).size
console.log(
  `log: ${info.events.toLocaleString('en')} events, ${info.sessions.toLocaleString('en')} sessions, ` +
    `${segmentNames.length} files, ${fmt(bytes / 1e6)} MB in ${dir}` +
    (info.seconds ? ` (generated with EventLog.append in ${fmt(info.seconds)} s)` : ' (reused)'),
)

// ---------------------------------------------------------------------------------------------
// 1. verify vs read + JSON.parse (best of two runs each, page cache warm).
async function readAndParse() {
  let lines = 0
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024)
  for (const name of segmentNames) {
    const handle = await open(join(dir, 'events', name), 'r')
    let carry = 0
    let position = 0
    for (;;) {
      const { bytesRead } = await handle.read(buf, carry, buf.length - carry, position)
      if (bytesRead === 0) break
      position += bytesRead
      const filled = carry + bytesRead
      let start = 0
      for (;;) {
        const nl = buf.indexOf(10, start)
        if (nl < 0 || nl >= filled) break
        JSON.parse(buf.toString('utf8', start, nl))
        lines++
        start = nl + 1
      }
      buf.copy(buf, 0, start, filled)
      carry = filled - start
    }
    await handle.close()
  }
  return lines
}

async function best(fn, runs = 2) {
  let fastest = Number.POSITIVE_INFINITY
  let value
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    value = await fn()
    fastest = Math.min(fastest, performance.now() - t)
  }
  return { ms: fastest, value }
}

if (only.has('verify')) {
  const parse = await best(readAndParse)
  const verify = await best(() => verifyDataDir(dir))
  if (!verify.value.ok)
    throw new Error(`the generated log does not verify: ${JSON.stringify(verify.value.problem)}`)
  const verifyInline = await best(() => verifyDataDir(dir, { workers: 0 }), 1)
  const mbps = (ms) => bytes / 1e6 / (ms / 1000)
  results.verify = {
    read_parse_mb_s: mbps(parse.ms),
    verify_mb_s: mbps(verify.ms),
    ratio: parse.ms / verify.ms,
    verify_one_thread_mb_s: mbps(verifyInline.ms),
    ratio_one_thread: parse.ms / verifyInline.ms,
  }
  console.log(
    `verify: read+JSON.parse ${fmt(mbps(parse.ms))} MB/s (${fmt(parse.ms / 1000, 2)} s); ` +
      `verify (chain + schema in one pass, verifyLog's worker threads) ${fmt(mbps(verify.ms))} MB/s (${fmt(verify.ms / 1000, 2)} s) ` +
      `-> ratio ${fmt(results.verify.ratio, 2)} (goal >= 0.7); no worker threads: ratio ${fmt(results.verify.ratio_one_thread, 2)}`,
  )
}

// ---------------------------------------------------------------------------------------------
// 2. One session's timeline over HTTP: the real server in a child process, recovered from the log.
async function startServer() {
  const child = spawn(process.execPath, [join(dist, 'main.js')], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', CARE_DATA_DIR: dir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const port = await new Promise((resolvePort, reject) => {
    const lines = []
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (lines.length < 50) lines.push(line)
        const match = /"port":(\d+)/.exec(line)
        if (match && line.includes('listening')) resolvePort(Number(match[1]))
      })
    }
    child.once('exit', (code) => reject(new Error(`server exited (${code}):\n${lines.join('\n')}`)))
  })
  const started = performance.now()
  const deadline = Date.now() + 300_000
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
    if (res?.status === 200) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, url: `http://127.0.0.1:${port}`, recoveryMs: performance.now() - started }
}

if (only.has('timeline')) {
  const server = await startServer()
  try {
    const ids = info.sample
    let seed = 7
    const pick = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return ids[seed % ids.length]
    }
    const get = async (id) => {
      const res = await fetch(`${server.url}/sessions/${id}/timeline`)
      const body = await res.json()
      if (res.status !== 200 || body.events.length < 1) throw new Error(`timeline ${id}: ${res.status}`)
    }
    for (let i = 0; i < 200; i++) await get(pick()) // warm-up: connections, JIT
    const latencies = []
    const stopAt = performance.now() + REQUEST_TIME_LIMIT_MS
    while (latencies.length < REQUESTS && performance.now() < stopAt) {
      const t = performance.now()
      await get(pick())
      latencies.push(performance.now() - t)
    }
    latencies.sort((a, b) => a - b)
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
    results.timeline = {
      requests: latencies.length,
      p50_ms: q(0.5),
      p99_ms: q(0.99),
      max_ms: latencies.at(-1),
      recovery_s: server.recoveryMs / 1000,
    }
    console.log(
      `timeline over HTTP: ${latencies.length} sequential requests for random sessions (server recovered ${info.events.toLocaleString('en')} events in ${fmt(server.recoveryMs / 1000)} s): ` +
        `p50 ${fmt(q(0.5), 2)} ms, p99 ${fmt(q(0.99), 2)} ms (goal < 5 ms), max ${fmt(latencies.at(-1), 2)} ms`,
    )
  } finally {
    server.child.kill('SIGTERM')
    await new Promise((r) => server.child.once('exit', r))
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Export peak RSS: the CLI's main() in a child process, which reports its maxRSS at exit.
async function exportInChild(args) {
  const out = join(dir, 'bench-export.jsonl')
  const code = `
    const { main } = await import(${JSON.stringify(pathToFileURL(join(dist, 'cli/cli.js')).href)})
    const started = performance.now()
    const code = await main(${JSON.stringify(['export', '--data-dir', dir, '--out', out, ...args])})
    const ms = performance.now() - started
    process.stdout.write(JSON.stringify({ code, ms, maxRSS: process.resourceUsage().maxRSS }))
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let text = ''
  child.stdout.on('data', (d) => {
    text += d
  })
  await new Promise((r) => child.once('exit', r))
  const result = JSON.parse(text)
  if (result.code !== 0) throw new Error(`export exited ${result.code}`)
  const manifest = JSON.parse(await readFile(`${out}.manifest.json`, 'utf8'))
  await rm(out, { force: true })
  await rm(`${out}.manifest.json`, { force: true })
  return { ...result, events: manifest.counts.events }
}

if (only.has('export')) {
  const keyFile = join(dir, 'bench-pseudonym.key')
  await writeFile(keyFile, 'bench-key-0123456789abcdef')
  const all = await exportInChild([])
  const pseud = await exportInChild(['--pseudonymize-key-file', keyFile])
  results.export = {
    events: all.events,
    peak_rss_mb: all.maxRSS / 1024,
    seconds: all.ms / 1000,
    pseudonymized_peak_rss_mb: pseud.maxRSS / 1024,
    pseudonymized_seconds: pseud.ms / 1000,
  }
  console.log(
    `export (all ${all.events.toLocaleString('en')} events, grouped by session, to a file): peak RSS ${fmt(all.maxRSS / 1024)} MB (goal < 150 MB), ` +
      `${fmt(all.ms / 1000, 2)} s; pseudonymised: peak RSS ${fmt(pseud.maxRSS / 1024)} MB, ${fmt(pseud.ms / 1000, 2)} s`,
  )
}

console.log(`\n${JSON.stringify(results)}`)
if (!keep) await rm(dir, { recursive: true, force: true })
