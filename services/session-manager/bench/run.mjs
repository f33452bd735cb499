#!/usr/bin/env node
// Session-manager benchmarks (issue 4). Run after a build: `pnpm bench` at the root, or
// `node bench/run.mjs [--events 1000000] [--sessions 100000] [--duration 8]` here; the checkpoints
// section also takes `[--replicas 3] [--slice 1] [--budget 150] [--warmup 5000 requests]
// [--variants off,tree,on,off_b] [--together] [--save rounds.json]`.
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
import {
  compareVariants,
  generateLog,
  load,
  loadInterleaved,
  rssMb,
  spawnNode,
  startService,
  stop,
} from './lib.mjs'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    sessions: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '8' },
    only: { type: 'string' },
    // checkpoints section: processes per variant, slice seconds, load budget seconds, variants
    replicas: { type: 'string', default: '3' },
    slice: { type: 'string', default: '1' },
    budget: { type: 'string', default: '150' },
    warmup: { type: 'string', default: '5000' },
    together: { type: 'boolean', default: false }, // load one replica of every variant at once
    save: { type: 'string' }, // file for the checkpoints section's raw rounds (pool runs with compareVariants)
    variants: { type: 'string', default: 'off,tree,on,off_b' },
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

// Same-run A/B of durable starts (issue 17): CARE_TRANSPARENCY=off (`off`), the Merkle tree without a
// key (`tree`) and the tree with signed checkpoints every 1000 records (`on`), plus a second copy of
// `off` (`off_b`) whose ratio to `off` is this run's A/A noise floor (`on_1s`, checkpoints once a
// second instead of every 1000 records, on request with `--variants`). `--replicas` processes per
// variant run at once, each warmed up, then `loadInterleaved` loads them in `--slice`-second slices in
// balanced order for as many rounds as fit `--budget` seconds (at least 2), so host drift and one
// process's JIT luck cancel. `ratio` is on/off over all slices; the medians and ranges are per round;
// the cpu ratios compare server CPU per request (/proc). Bounded: about budget seconds plus start-up and a --warmup of requests per process.
async function checkpointOverhead() {
  const replicas = Number(values.replicas)
  const slice = Number(values.slice)
  const keyFile = join(tmp, 'bench.skey')
  writeFileSync(keyFile, generateNoteKey('bench.example/log').signerKey)
  const catalog = {
    off: { CARE_TRANSPARENCY: 'off' },
    off_b: { CARE_TRANSPARENCY: 'off' },
    tree: {},
    on: { CARE_CHECKPOINT_KEY_FILE: keyFile, CARE_CHECKPOINT_EVERY: '1000' },
    // checkpoints at a cadence that does not grow with load: one a second while records arrive
    on_1s: {
      CARE_CHECKPOINT_KEY_FILE: keyFile,
      CARE_CHECKPOINT_EVERY: '100000000',
      CARE_CHECKPOINT_INTERVAL_MS: '1000',
    },
  }
  const names = values.variants.split(',')
  for (const name of names) if (!catalog[name]) throw new Error(`unknown variant ${name}`)
  if (!names.includes('off')) throw new Error('--variants needs off (the baseline)')
  const services = []
  try {
    for (let replica = 0; replica < replicas; replica++) {
      for (const name of names) {
        const service = await startService({
          CARE_DATA_DIR: join(tmp, `tlog-${name}-${replica}`),
          ...catalog[name],
        })
        services.push({
          variant: name,
          url: `${service.url}/sessions.start`,
          pid: service.child.pid,
          service,
        })
      }
    }
    // Warm-up by request count, not time, so every process has run the same code as often (JIT tiers).
    for (const { url } of services) await load(url, { amount: Number(values.warmup) })
    const perRound = values.together ? replicas : services.length
    const rounds = Math.max(2, Math.floor(Number(values.budget) / (slice * perRound)))
    const runs = await loadInterleaved(services, {
      rounds,
      sliceSeconds: slice,
      together: values.together,
      onRound: (round, row) =>
        console.log(
          `checkpoints round ${round + 1}/${rounds}: ` +
            names
              .map(
                (n) =>
                  `${n} ${Math.round(row[n].requests / row[n].seconds)} req/s ${Math.round(row[n].cpuUs / row[n].requests)} µs/req`,
              )
              .join('; '),
        ),
    })
    if (values.save) writeFileSync(values.save, JSON.stringify(runs))
    const by = compareVariants(runs, 'off')
    const pick = (name, keys) =>
      by[name] ? Object.fromEntries(keys.map((k) => [`${name}_${k}`, by[name][k]])) : {}
    const stats = [
      'rps',
      'cpu_us_per_req',
      'ratio',
      'ratio_median',
      'ratio_range',
      'cpu_ratio',
      'cpu_ratio_median',
      'cpu_ratio_range',
    ]
    results.checkpoints = {
      method: `${values.together ? 'simultaneous' : 'interleaved'} slices, ${replicas} processes per variant, ${rounds} rounds`,
      replicas,
      rounds,
      slice_s: slice,
      duration_s: rounds * slice * replicas,
      off_rps: by.off.rps,
      off_cpu_us_per_req: by.off.cpu_us_per_req,
      on_rps: by.on?.rps,
      ratio: by.on?.ratio,
      on_p99_ms: by.on?.p99_ms,
      ...pick(
        'on',
        stats.slice(1).filter((k) => k !== 'ratio'),
      ),
      ...pick('tree', stats),
      ...pick('on_1s', stats),
      ...pick('off_b', stats),
      errors_or_non2xx: Object.values(by).reduce((a, v) => a + v.failed, 0),
      goal: 'ratio >= 0.95 (tree + checkpoints within 5% of durable starts without them); off_b is the A/A noise floor',
    }
    console.log('checkpoints', results.checkpoints)
    console.log(
      'checkpoints per process:',
      runs.processes
        .map(
          (p) =>
            `${p.variant} ${Math.round(p.requests / p.seconds)} req/s ${Math.round(p.cpuUs / p.requests)} µs/req`,
        )
        .join('; '),
    )
  } finally {
    for (const { service } of services) await service.stop()
  }
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
