// Shared pieces of the session-manager benchmarks: a realistic log generator, child-process
// services on loopback, autocannon runs with a unique body per request, and RSS readings.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { encodeRecord, GENESIS_HASH } from '@care/event-log'
import autocannon from 'autocannon'
import { monotonicFactory } from 'ulid'
import { createIdFactory } from '../dist/ids/id-factory.js'

const DAY = 86_400_000
export const MAIN_JS = new URL('../dist/main.js', import.meta.url).pathname

/**
 * Writes a realistic `events` lifecycle log in the exact on-disk format: ~50 (or `open`) concurrently
 * open sessions, each a start, a few touches and an explicit end. Sessions carry a 365-day idle and
 * max duration so restarting on the log does not append timeout ends (the log stays reusable).
 * `startTime` (default 30 days ago) is the first event's time; events are 200-600 ms apart. Returns the
 * number of segment files and three session ids: the first one that ended, the last one that ended
 * and one still open at the end.
 */
export function generateLog(
  dataDir,
  events,
  { fileBytes = 64 * 1024 * 1024, open: openCap = 50, startTime = Date.now() - 30 * DAY } = {},
) {
  const eventsDir = join(dataDir, 'events')
  mkdirSync(eventsDir, { recursive: true })
  const id = monotonicFactory()
  let time = startTime
  let firstEnded
  let lastEnded
  let prev = GENESIS_HASH
  let fileIndex = 1
  let fd = openSync(join(eventsDir, segment(fileIndex)), 'w')
  let fileSize = 0
  let chunk = []
  let chunkBytes = 0
  const open = []
  const flush = () => {
    if (chunk.length > 0) writeSync(fd, Buffer.concat(chunk))
    chunk = []
    chunkBytes = 0
  }
  for (let seq = 1; seq <= events; seq++) {
    time += 200 + Math.floor(Math.random() * 400)
    const ts = new Date(time).toISOString()
    let event
    const r = Math.random()
    if (open.length < openCap && (open.length < Math.min(5, openCap) || r < 0.3 || seq <= openCap)) {
      const session = { id: id(time), user: `user-${Math.floor(Math.random() * 5000)}`, started: ts }
      open.push(session)
      event = {
        ...common(id(time), session, ts, 'human'),
        event: 'session.start',
        input_record_id: id(time),
        input_source: 'ui',
        input_digest: `sha256:${'a'.repeat(64)}`,
        metadata: { device: 'tablet', locale: 'en-GB' },
        idle_timeout_ms: 365 * DAY,
        max_duration_ms: 365 * DAY,
      }
    } else if (r < 0.75 || open.length === 0) {
      const session = open[Math.floor(Math.random() * open.length)]
      event = {
        ...common(id(time), session, ts, 'human'),
        event: 'session.touch',
        input_record_id: id(time),
        input_source: 'ui',
        input_digest: `sha256:${'b'.repeat(64)}`,
      }
    } else {
      const at = Math.floor(Math.random() * open.length)
      const session = open[at]
      open[at] = open[open.length - 1]
      open.pop()
      firstEnded ??= session.id
      lastEnded = session.id
      event = {
        ...common(id(time), session, ts, 'human'),
        event: 'session.end',
        reason: 'explicit',
        started_at: session.started,
        ended_at: ts,
        input_record_id: id(time),
        input_source: 'ui',
        input_digest: `sha256:${'c'.repeat(64)}`,
      }
    }
    const { record, line } = encodeRecord(event, seq, prev)
    prev = record.hash
    if (fileSize + line.length > fileBytes) {
      flush()
      closeSync(fd)
      fileIndex++
      fd = openSync(join(eventsDir, segment(fileIndex)), 'w')
      fileSize = 0
    }
    chunk.push(line)
    chunkBytes += line.length
    fileSize += line.length
    if (chunkBytes > 4 * 1024 * 1024) flush()
  }
  flush()
  closeSync(fd)
  return {
    files: fileIndex,
    firstEnded,
    lastEnded,
    open: open.at(-1)?.id,
    openSessions: open.length,
    endTime: time,
  }
}

function common(recordId, session, ts, origin) {
  return {
    schema_version: '1.1',
    record_id: recordId,
    user_id: session.user,
    session_id: session.id,
    timestamp: ts,
    source: 'session_manager',
    origin,
    performer_id: 'caregiver-1',
  }
}

function segment(index) {
  return `events-${String(index).padStart(6, '0')}.jsonl`
}

/** Starts `node <script>` with env; resolves when a stdout line matches `ready` (returns the match). */
export function spawnNode(script, env, ready, args = [], nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const matched = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = ready.exec(line)
      if (m) resolve(m)
    })
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
  return { child, matched }
}

/** Runs the session-manager on loopback (node flags in `nodeArgs`); resolves once /readyz answers 200. */
export async function startService(env, nodeArgs = []) {
  const started = performance.now()
  const { child, matched } = spawnNode(
    MAIN_JS,
    { HOST: '127.0.0.1', PORT: '0', ...env, LOG_LEVEL: 'info' },
    /"port":(\d+).*listening/,
    [],
    nodeArgs,
  )
  const url = `http://127.0.0.1:${(await matched)[1]}`
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 5))
  }
  return { child, url, readyMs: performance.now() - started, stop: () => stop(child) }
}

export function stop(child) {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGTERM')
  })
}

/** Resident set size of a process in MB, from /proc. */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024
}

/** A valid start request body with a fresh record_id. */
const nextRecordId = createIdFactory()
export function startBody(userId = `user-${Math.floor(Math.random() * 100000)}`) {
  return JSON.stringify({
    schema_version: '1.1',
    record_id: nextRecordId(),
    user_id: userId,
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
  })
}

/** autocannon POSTing a unique start body per request. */
export function load(url, { connections = 50, duration = 8, amount } = {}) {
  return autocannon({
    url,
    connections,
    ...(amount ? { amount } : { duration }),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: startBody() }),
      },
    ],
  })
}

/**
 * CPU time (user + system) process `pid` has used so far, in µs, from `/proc/<pid>/stat` (Linux; the
 * kernel counts in clock ticks of 10 ms, so read it around slices of a second or more).
 *
 * @example
 * const before = cpuMicros(service.child.pid)
 */
export function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100
}

/**
 * Interleaved-slice load over services that run at the same time, for same-run A/B comparisons that
 * a ±10 % host drift and one process's JIT luck cannot decide. `targets` are `{ variant, url, pid }`,
 * usually several (replicas) per variant, each a separate process. Every round loads every target once
 * for `sliceSeconds` (whole seconds; autocannon stops on its 1 s tick) with `connections` connections
 * and the `load` start bodies. The order is balanced: targets are grouped by replica, the variants in
 * each group rotate by one place per round and per group, and every second round runs the whole
 * sequence backwards (ABBA), so each variant takes every position equally often. Per target and round
 * it records completed requests, wall seconds (around the autocannon run), server CPU µs (from /proc)
 * and the slice's p99 and non-2xx/error count. `onRound(round, rows)` is called after each round.
 * With `together`, each slice loads one replica of every variant at the same time instead (one
 * autocannon per target, `connections` each), so every burst of outside load hits all variants alike:
 * their CPU per request is then compared under identical conditions (their req/s share the CPU).
 * Returns `{ variants, rounds: [{ [variant]: { requests, seconds, cpuUs, p99, failed } }], processes }`,
 * the replicas of a variant summed per round, and `processes` the same totals per target (to see
 * whether one process ran slower throughout); `compareVariants` turns it into ratios.
 *
 * @example
 * const runs = await loadInterleaved(
 *   [{ variant: 'off', url: a.url, pid: a.child.pid }, { variant: 'on', url: b.url, pid: b.child.pid }],
 *   { rounds: 10, sliceSeconds: 1 },
 * )
 * console.log(compareVariants(runs, 'off').on.ratio_median)
 */
export async function loadInterleaved(
  targets,
  { rounds, sliceSeconds = 1, connections = 50, together = false, onRound = () => {} },
) {
  const variants = [...new Set(targets.map((t) => t.variant))]
  const groups = []
  const seen = new Map()
  for (const target of targets) {
    const replica = seen.get(target.variant) ?? 0
    seen.set(target.variant, replica + 1)
    groups[replica] ??= []
    groups[replica].push(target)
  }
  const result = {
    variants,
    rounds: [],
    processes: targets.map((t) => ({ variant: t.variant, pid: t.pid, requests: 0, seconds: 0, cpuUs: 0 })),
  }
  for (let round = 0; round < rounds; round++) {
    let order = groups.flatMap((group, g) => {
      const shift = (round + g) % group.length
      return [...group.slice(shift), ...group.slice(0, shift)]
    })
    if (round % 2 === 1) order = order.reverse()
    const row = Object.fromEntries(
      variants.map((v) => [v, { requests: 0, seconds: 0, cpuUs: 0, p99: 0, failed: 0 }]),
    )
    // One slice per target, or with `together` one slice per replica group, all its variants at once.
    const slices = together ? (round % 2 === 1 ? [...groups].reverse() : groups) : order.map((t) => [t])
    for (const slice of slices) {
      const cpu0 = slice.map((t) => cpuMicros(t.pid))
      const t0 = performance.now()
      const runs = await Promise.all(slice.map((t) => load(t.url, { duration: sliceSeconds, connections })))
      const seconds = (performance.now() - t0) / 1000
      for (const [i, target] of slice.entries()) {
        const r = runs[i]
        const cpuUs = cpuMicros(target.pid) - cpu0[i]
        const cell = row[target.variant]
        const totals = result.processes[targets.indexOf(target)]
        cell.cpuUs += cpuUs
        cell.requests += r['2xx']
        cell.seconds += seconds
        totals.cpuUs += cpuUs
        totals.requests += r['2xx']
        totals.seconds += seconds
        cell.p99 = Math.max(cell.p99, r.latency.p99)
        cell.failed += r.non2xx + r.errors + r.timeouts
      }
    }
    result.rounds.push(row)
    onRound(round, row)
  }
  return result
}

/**
 * Summarises a `loadInterleaved` result against the `baseline` variant. Per variant: `rps` (requests
 * over all its slices ÷ their seconds), `cpu_us_per_req` (server CPU over all slices ÷ requests),
 * `ratio` (rps ÷ the baseline's), `ratio_median` with `ratio_range` [min, max] of the per-round
 * ratios, `cpu_ratio` (baseline CPU per request ÷ this variant's, so below 1 means costlier, like
 * `ratio`) with `cpu_ratio_median`/`cpu_ratio_range` per round, the worst slice `p99_ms` and `failed`.
 *
 * @example
 * const { tree } = compareVariants(await loadInterleaved(targets, { rounds: 8 }), 'off')
 * console.log(tree.ratio_median, tree.ratio_range)
 */
export function compareVariants({ variants, rounds }, baseline) {
  const sum = (v, k) => rounds.reduce((a, row) => a + row[v][k], 0)
  const rps = (cell) => cell.requests / cell.seconds
  const cpu = (cell) => cell.cpuUs / cell.requests
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2
  }
  const r3 = (x) => Math.round(x * 1000) / 1000
  const baseRps = sum(baseline, 'requests') / sum(baseline, 'seconds')
  const baseCpu = sum(baseline, 'cpuUs') / sum(baseline, 'requests')
  return Object.fromEntries(
    variants.map((v) => {
      const ratios = rounds.map((row) => rps(row[v]) / rps(row[baseline]))
      const cpuRatios = rounds.map((row) => cpu(row[baseline]) / cpu(row[v]))
      const vRps = sum(v, 'requests') / sum(v, 'seconds')
      const vCpu = sum(v, 'cpuUs') / sum(v, 'requests')
      return [
        v,
        {
          rps: Math.round(vRps),
          cpu_us_per_req: Math.round(vCpu),
          ratio: r3(vRps / baseRps),
          ratio_median: r3(median(ratios)),
          ratio_range: [r3(Math.min(...ratios)), r3(Math.max(...ratios))],
          cpu_ratio: r3(baseCpu / vCpu),
          cpu_ratio_median: r3(median(cpuRatios)),
          cpu_ratio_range: [r3(Math.min(...cpuRatios)), r3(Math.max(...cpuRatios))],
          p99_ms: Math.max(...rounds.map((row) => row[v].p99)),
          failed: sum(v, 'failed'),
        },
      ]
    }),
  )
}
