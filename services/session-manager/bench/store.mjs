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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { generateLog, rssMb, startService } from './lib.mjs'

/** Bump when generateLog's output changes: cached logs of other versions are deleted. */
const GENERATOR_VERSION = 'g2'
const DAY = 86_400_000

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

/** First start (full replay, then a snapshot), then `restarts` restarts from the snapshot. */
async function restartSeries(log) {
  const first = await startService(env(log.dir))
  const firstRss = rssMb(first.child.pid)
  await first.stop()
  const series = []
  for (let i = 0; i < restarts; i++) {
    const service = await startService(env(log.dir))
    await new Promise((r) => setTimeout(r, 200))
    series.push({ readyMs: Math.round(service.readyMs), rssMb: Math.round(rssMb(service.child.pid)) })
    await service.stop()
  }
  const median = (k) => series.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(series.length / 2)]
  return {
    events: log.events,
    open_sessions: log.openSessions,
    first_start_ms: Math.round(first.readyMs),
    first_start_rss_mb: Math.round(firstRss),
    restart_ready_ms_median: median('readyMs'),
    restart_rss_mb_median: median('rssMb'),
    restarts: series,
  }
}

async function timeline(url, id) {
  const result = await autocannon({
    url: `${url}/sessions/${id}/timeline`,
    connections: 10,
    duration: Number(values.duration),
  })
  return {
    requests: result.requests.total,
    non2xx: result.non2xx,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    max_ms: result.latency.max,
  }
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
  if (section('timeline')) {
    const service = await startService(env(large.dir))
    // Warm-up: the first lookups build sidecar indexes the generator did not write.
    for (const id of [large.firstEnded, large.lastEnded, large.open])
      await fetch(`${service.url}/sessions/${id}/timeline`)
    results.timeline_large = {
      first_closed: await timeline(service.url, large.firstEnded),
      last_closed: await timeline(service.url, large.lastEnded),
      open: await timeline(service.url, large.open),
    }
    await service.stop()
  }
}
if (section('many-open')) {
  const many = Number(values['many-open'])
  const log = cachedLog(many * 3, many)
  results.many_open = await restartSeries(log)
}
console.log(JSON.stringify(results, null, 2))
