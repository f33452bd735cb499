#!/usr/bin/env node
// The embedded store's history-independence targets (issue 12), against the built dist:
//   pnpm --filter @care/session-manager build && node bench/store.mjs [--large 10000000] [--small 100000]
//     [--open 10000] [--many-open 100000] [--restarts 3] [--cache <dir>]
// - restart-to-ready (spawn to /readyz 200) and RSS right after, with `small` and `large` events of
//   history and `open` open sessions, after a first start that replays the whole log and snapshots;
// - RSS with `many-open` open sessions;
// - one session's timeline over HTTP (first closed, last closed, open) on the large log, 10 connections.
// Logs are generated once into a cache dir (default: $CARE_BENCH_CACHE or <tmp>/care-bench-cache),
// keyed by GENERATOR_VERSION and size; entries of other generator versions are removed, so the cache
// holds at most the logs of one version. The service's snapshots and sidecar indexes stay in the cache.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { measureLatency } from './latency-client.mjs'
import { generateLog, rssMb, spawnNode, startService, stop } from './lib.mjs'

/** Bump when generateLog's output changes: cached logs of other versions are deleted. */
const GENERATOR_VERSION = 'g2'
const DAY = 86_400_000
const here = (name) => fileURLToPath(new URL(name, import.meta.url))

const { values } = parseArgs({
  options: {
    large: { type: 'string', default: '10000000' },
    small: { type: 'string', default: '100000' },
    open: { type: 'string', default: '10000' },
    'many-open': { type: 'string', default: '100000' },
    restarts: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    cache: { type: 'string', default: process.env.CARE_BENCH_CACHE ?? join(tmpdir(), 'care-bench-cache') },
    only: { type: 'string' },
    // Timeline: measured requests per series (bounded by --duration too), and distinct cold sessions.
    requests: { type: 'string', default: '20000' },
    cold: { type: 'string', default: '2000' },
    // A directory: run the service under the timeline load with --cpu-prof writing there.
    profile: { type: 'string' },
  },
})
const cache = values.cache
const restarts = Number(values.restarts)
const section = (name) => !values.only || values.only.split(',').includes(name)
const results = {}
mkdirSync(cache, { recursive: true })
for (const name of readdirSync(cache)) {
  if (!name.startsWith(`${GENERATOR_VERSION}-`)) rmSync(join(cache, name), { recursive: true, force: true })
}

/** The cached data dir of a log of `events` events and `open` open sessions, generated if missing. */
function cachedLog(events, open) {
  const dir = join(cache, `${GENERATOR_VERSION}-${events}-${open}`)
  const done = join(dir, 'bench-log.json')
  if (existsSync(done)) return { dir, ...JSON.parse(readFileSync(done, 'utf8')) }
  rmSync(dir, { recursive: true, force: true })
  const started = performance.now()
  // Ends about an hour ago, so the retry window holds a realistic day of answers.
  const info = generateLog(dir, events, { open, startTime: Date.now() - events * 400 - DAY / 24 })
  const generatedMs = Math.round(performance.now() - started)
  writeFileSync(done, JSON.stringify({ ...info, events, generatedMs }))
  console.error(`generated ${events} events (${open} open) in ${generatedMs} ms into ${dir}`)
  return { dir, ...info, events, generatedMs }
}

const env = (dir) => ({ CARE_DATA_DIR: dir, CARE_RETRY_WINDOW: '24h', CARE_TRANSPARENCY: 'off' })

/** CPU time (user + system) of a process so far, in ms, from /proc. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

/** Deletes the saved active-segment indexes (`.active.idx`): what a start did before they existed. */
function dropActiveIndexes(dir) {
  const events = join(dir, 'events')
  for (const name of readdirSync(events)) if (name.endsWith('.active.idx')) rmSync(join(events, name))
}

/**
 * First start (full replay, then a snapshot), then `restarts` restarts from the snapshot, alternating
 * with and without the active segment's saved index (deleted before the start: the old behaviour),
 * in the same run. Each restart records ready time, RSS 200 ms after ready, and RSS and CPU time
 * 3 s after ready (the active prefix is indexed in the background after ready).
 */
async function restartSeries(log) {
  const first = await startService(env(log.dir))
  const firstRss = rssMb(first.child.pid)
  await first.stop()
  const series = { with_active_index: [], without_active_index: [] }
  for (let i = 0; i < 2 * restarts; i++) {
    const without = i % 2 === 1
    if (without) dropActiveIndexes(log.dir)
    const service = await startService(env(log.dir))
    await new Promise((r) => setTimeout(r, 200))
    const rss = Math.round(rssMb(service.child.pid))
    await new Promise((r) => setTimeout(r, 2800))
    series[without ? 'without_active_index' : 'with_active_index'].push({
      readyMs: Math.round(service.readyMs),
      rssMb: rss,
      rss3sMb: Math.round(rssMb(service.child.pid)),
      cpu3sMs: Math.round(cpuMs(service.child.pid)),
    })
    await service.stop() // the shutdown snapshot saves the active index again
  }
  const median = (list, k) => list.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(list.length / 2)]
  const summary = (list) => ({
    restart_ready_ms_median: median(list, 'readyMs'),
    restart_rss_mb_median: median(list, 'rssMb'),
    rss_3s_mb_median: median(list, 'rss3sMb'),
    cpu_3s_ms_median: median(list, 'cpu3sMs'),
  })
  return {
    events: log.events,
    open_sessions: log.openSessions,
    first_start_ms: Math.round(first.readyMs),
    first_start_rss_mb: Math.round(firstRss),
    ...summary(series.with_active_index),
    without_active_index: summary(series.without_active_index),
    restarts: series,
  }
}

/** Session ids of `count` ended sessions spread over the log (the first MiB of evenly spaced segments). */
function closedSessions(dir, count) {
  const eventsDir = join(dir, 'events')
  const segments = readdirSync(eventsDir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
  const ids = []
  const per = Math.ceil(count / Math.min(segments.length, 32))
  const step = Math.max(1, Math.floor(segments.length / 32))
  for (let i = 0; i < segments.length && ids.length < count; i += step) {
    const fd = openSync(join(eventsDir, segments[i]), 'r')
    const buf = Buffer.alloc(1024 * 1024)
    const read = readSync(fd, buf, 0, buf.length, 0)
    closeSync(fd)
    const lines = buf.toString('utf8', 0, read).split('\n').slice(0, -1)
    let taken = 0
    for (const line of lines) {
      if (taken >= per || ids.length >= count) break
      const record = JSON.parse(line)
      if (record.event === 'session.end') {
        ids.push(record.session_id)
        taken++
      }
    }
  }
  return ids
}

/** Adds each series' p50/p99 as a ratio to the floor series measured in the same (interleaved) run. */
function withRatios(run) {
  const { floor } = run
  for (const r of Object.values(run)) {
    if (r === floor) continue
    r.p50_ratio = +(r.p50_us / floor.p50_us).toFixed(2)
    r.p99_ratio = +(r.p99_us / floor.p99_us).toFixed(2)
  }
  return run
}

/**
 * One session's timeline (first closed, last closed, open) on `log`, 10 connections, interleaved with
 * the floor (a bare node:http server answering a real timeline's bytes) so all see the same noise of a
 * shared box; then the cold variant: `cold` distinct closed sessions, each requested once (no cache
 * hit), interleaved with the floor too.
 */
async function timelineSeries(log) {
  const service = await startService(
    env(log.dir),
    values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [],
  )
  const url = (id) => `${service.url}/sessions/${id}/timeline`
  // Warm-up: the first lookups build sidecar indexes the generator did not write.
  const bodies = []
  for (const id of [log.firstEnded, log.lastEnded, log.open]) bodies.push(await (await fetch(url(id))).text())
  const floor = spawnNode(here('floor-server.mjs'), { FLOOR_BODY: bodies[0] }, /"port":(\d+)/)
  const floorUrl = `http://127.0.0.1:${(await floor.matched)[1]}/`
  const hot = await measureLatency(
    [
      `floor=${floorUrl}`,
      // The service's own cheapest route: what Hono, auth-free routing, metrics and logging cost.
      `service_healthz=${service.url}/healthz`,
      `first_closed=${url(log.firstEnded)}`,
      `last_closed=${url(log.lastEnded)}`,
      `open=${url(log.open)}`,
    ],
    { connections: 10, requests: Number(values.requests), seconds: Number(values.duration), warmup: 1000 },
  )
  const out = { body_bytes: bodies.map((b) => b.length), hot: withRatios(hot) }
  const cold = closedSessions(log.dir, Number(values.cold))
  if (cold.length > 0) {
    const run = await measureLatency([`floor=${floorUrl}`, ...cold.map((id) => `cold=${url(id)}`)], {
      connections: 10,
      requests: 2 * cold.length,
      seconds: Number(values.duration) * 4,
      warmup: 0,
    })
    out.cold = { sessions: cold.length, ...withRatios(run) }
  }
  await stop(floor.child)
  await service.stop()
  return out
}

const open = Number(values.open)
if (section('restart')) {
  const small = cachedLog(Number(values.small), open)
  const large = cachedLog(Number(values.large), open)
  results.restart_small = await restartSeries(small)
  results.restart_large = await restartSeries(large)
  results.restart_ratio_large_small = +(
    results.restart_large.restart_ready_ms_median / results.restart_small.restart_ready_ms_median
  ).toFixed(2)
}
if (section('timeline')) {
  results.timeline_large = await timelineSeries(cachedLog(Number(values.large), open))
}
if (section('many-open')) {
  const many = Number(values['many-open'])
  const log = cachedLog(many * 3, many)
  results.many_open = await restartSeries(log)
}
console.log(JSON.stringify(results, null, 2))
