#!/usr/bin/env node
// Session-manager benchmarks (issue 4). Run after a build: `pnpm bench` at the root, or
// `node bench/run.mjs [--events 1000000] [--sessions 100000] [--duration 8]` here.
// Every comparison is a ratio of two measurements taken in this same run, alternating A/B
// where it matters, because these machines are shared and noisy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { generateNoteKey } from '@care/tlog'
import { ulid } from 'ulid'
import { createIdFactory } from '../dist/ids/id-factory.js'
import { generateLog, load, rssMb, spawnNode, startService, stop } from './lib.mjs'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    sessions: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '8' },
    only: { type: 'string' },
  },
})
const results = {}
const here = (name) => new URL(name, import.meta.url).pathname
const tmp = mkdtempSync(join(tmpdir(), 'care-bench-'))
const section = (name) => !values.only || values.only.split(',').includes(name)

try {
  if (section('ids')) await ids()
  if (section('start')) await startThroughput()
  if (section('checkpoints')) await checkpointOverhead()
  if (section('restart')) await restart()
  if (section('rss')) await openSessionsRss()
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
console.log('\n=== summary ===')
console.log(JSON.stringify(results, null, 2))

async function ids() {
  const n = 100_000
  const fast = createIdFactory()
  const time = (fn) => {
    const t = performance.now()
    for (let i = 0; i < n; i++) fn()
    return ((performance.now() - t) * 1000) / n
  }
  time(() => ulid())
  time(() => fast())
  const defaultUs = Math.min(
    time(() => ulid()),
    time(() => ulid()),
  )
  const pooledUs = Math.min(
    time(() => fast()),
    time(() => fast()),
  )
  results.ids = {
    default_ulid_us: round(defaultUs, 3),
    pooled_monotonic_us: round(pooledUs, 3),
    speedup: round(defaultUs / pooledUs, 1),
  }
  console.log('ids', results.ids)
}

async function startThroughput() {
  const duration = Number(values.duration)
  const echo = spawnNode(here('echo-server.mjs'), {}, /"port":(\d+)/)
  const echoUrl = `http://127.0.0.1:${(await echo.matched)[1]}/echo`
  const service = await startService({ CARE_DATA_DIR: join(tmp, 'start') })
  const startUrl = `${service.url}/sessions.start`
  const runs = { echo: [], start: [] }
  await load(echoUrl, { duration: 2 }) // warm-up both
  await load(startUrl, { duration: 2 })
  for (let round = 0; round < 2; round++) {
    for (const [name, url] of [
      ['echo', echoUrl],
      ['start', startUrl],
    ]) {
      const r = await load(url, { duration })
      const non2xx = r.non2xx + r.errors + r.timeouts
      runs[name].push({ rps: r.requests.average, p99: r.latency.p99, p50: r.latency.p50, non2xx })
      console.log(name, `round ${round + 1}`, runs[name].at(-1))
    }
  }
  await stop(echo.child)
  await service.stop()
  const mean = (xs, k) => xs.reduce((a, x) => a + x[k], 0) / xs.length
  results.start = {
    connections: 50,
    duration_s: duration,
    echo_rps: round(mean(runs.echo, 'rps')),
    start_rps: round(mean(runs.start, 'rps')),
    ratio: round(mean(runs.start, 'rps') / mean(runs.echo, 'rps'), 3),
    start_p99_ms: Math.max(...runs.start.map((r) => r.p99)),
    start_p50_ms: Math.max(...runs.start.map((r) => r.p50)),
    errors_or_non2xx: runs.start.reduce((a, r) => a + r.non2xx, 0),
    goal: 'ratio >= 0.5, p99 < 20 ms',
  }
  console.log('start', results.start)
}

// Same-run A/B of durable starts: the Merkle tree and signed checkpoints (every 1000 records) on,
// against CARE_TRANSPARENCY=off, alternating rounds on one machine.
async function checkpointOverhead() {
  const duration = Math.max(2, Number(values.duration) / 2)
  const keyFile = join(tmp, 'bench.skey')
  writeFileSync(keyFile, generateNoteKey('bench.example/log').signerKey)
  const variants = {
    off: { CARE_DATA_DIR: join(tmp, 'tlog-off'), CARE_TRANSPARENCY: 'off' },
    on: {
      CARE_DATA_DIR: join(tmp, 'tlog-on'),
      CARE_CHECKPOINT_KEY_FILE: keyFile,
      CARE_CHECKPOINT_EVERY: '1000',
    },
  }
  const runs = { off: [], on: [] }
  for (let round = 0; round < 2; round++) {
    for (const name of round === 0 ? ['off', 'on'] : ['on', 'off']) {
      const service = await startService(variants[name])
      await load(`${service.url}/sessions.start`, { duration: 1 })
      const r = await load(`${service.url}/sessions.start`, { duration })
      runs[name].push({
        rps: r.requests.average,
        p99: r.latency.p99,
        non2xx: r.non2xx + r.errors + r.timeouts,
      })
      console.log(`checkpoints ${name} round ${round + 1}`, runs[name].at(-1))
      await service.stop()
    }
  }
  const mean = (xs) => xs.reduce((a, x) => a + x.rps, 0) / xs.length
  results.checkpoints = {
    duration_s: duration,
    off_rps: round(mean(runs.off)),
    on_rps: round(mean(runs.on)),
    ratio: round(mean(runs.on) / mean(runs.off), 3),
    on_p99_ms: Math.max(...runs.on.map((r) => r.p99)),
    errors_or_non2xx: [...runs.on, ...runs.off].reduce((a, r) => a + r.non2xx, 0),
    goal: 'ratio >= 0.95 (tree + checkpoints within 5% of durable starts without them)',
  }
  console.log('checkpoints', results.checkpoints)
}

async function restart() {
  const events = Number(values.events)
  const dir = join(tmp, 'restart')
  const t = performance.now()
  generateLog(dir, events)
  console.log(`generated ${events} events in ${round((performance.now() - t) / 1000, 1)} s`)
  const baseline = []
  const ready = []
  for (let round = 0; round < 2; round++) {
    const t0 = performance.now()
    const parse = spawnNode(here('read-parse.mjs'), {}, /"parsed"/, [dir])
    await parse.matched
    baseline.push(performance.now() - t0)
    await new Promise((r) => parse.child.once('exit', r))
    const service = await startService({ CARE_DATA_DIR: dir })
    ready.push(service.readyMs)
    await service.stop()
    console.log(
      `round ${round + 1}: read+parse ${Math.round(baseline.at(-1))} ms, restart-to-ready ${Math.round(ready.at(-1))} ms`,
    )
  }
  const b = Math.min(...baseline)
  const r = Math.min(...ready)
  results.restart = {
    events,
    read_parse_ms: Math.round(b),
    restart_to_ready_ms: Math.round(r),
    ratio: round(r / b, 2),
    goal: 'ratio <= 2',
  }
  console.log('restart', results.restart)
}

async function openSessionsRss() {
  const sessions = Number(values.sessions)
  const service = await startService({
    CARE_DATA_DIR: join(tmp, 'rss'),
    NODE_OPTIONS: `--expose-gc --import=${here('heap-report.mjs')}`,
  })
  const heapReports = []
  createInterface({ input: service.child.stdout }).on('line', (line) => {
    if (line.includes('"heap-report"')) heapReports.push(JSON.parse(line))
  })
  const heapReport = async () => {
    const count = heapReports.length
    service.child.kill('SIGUSR2')
    while (heapReports.length === count) await new Promise((r) => setTimeout(r, 20))
    return heapReports.at(-1)
  }
  const before = rssMb(service.child.pid)
  const idle = await heapReport()
  const t = performance.now()
  const r = await load(`${service.url}/sessions.start`, { connections: 50, amount: sessions })
  const res = await fetch(`${service.url}/readyz`).then((x) => x.json())
  const after = rssMb(service.child.pid)
  const loaded = await heapReport()
  await service.stop()
  results.rss = {
    open_sessions: res.open_sessions,
    requests_2xx: r['2xx'],
    rss_idle_mb: Math.round(before),
    rss_mb: Math.round(after),
    live_heap_idle_mb: Math.round(idle.heap_used / 1e6),
    live_heap_mb: Math.round(loaded.heap_used / 1e6),
    heap_total_mb: Math.round(loaded.heap_total / 1e6),
    live_bytes_per_session: Math.round((loaded.heap_used - idle.heap_used) / res.open_sessions),
    fill_s: round((performance.now() - t) / 1000, 1),
    goal: 'RSS < 200 MB with 100,000 open sessions',
  }
  console.log('rss', results.rss)
}

function round(x, digits = 0) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
