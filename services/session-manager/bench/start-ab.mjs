#!/usr/bin/env node
// Same-run A/B of durable `POST /sessions.start` (issue 18): this build's service against another
// build of it (`--base <dir with main.js>`, e.g. a copy of dist/ built from an earlier commit) and
// the bare Hono echo, all three running at once, loaded in rotating order for `--rounds` rounds.
// Reports per-round req/s ratios and server CPU µs per request (from /proc, far less sensitive to
// other load on a shared machine than req/s). Bounded: rounds × 3 × duration seconds plus warm-up.
// `node bench/start-ab.mjs [--base bench-results/builds/main/dist] [--rounds 5] [--duration 5]
// [--connections 50] [--env NAME=value]`; freeze a build to compare with `node bench/snapshot-build.mjs`.
// Bounded: about (rounds x servers + 1) x duration seconds. The summary's targets (issue 18): the
// start's req/s >= 0.9x the echo's and its p99 <= 1.2x the echo's, both as medians of the rounds;
// `echo_cpu_over_after_cpu_median` is the same comparison by server CPU per request.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { load, MAIN_JS, spawnNode, stop } from './lib.mjs'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    env: { type: 'string', multiple: true, default: [] },
  },
})
const env = Object.fromEntries(
  values.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
)
const tmp = mkdtempSync(join(tmpdir(), 'care-start-ab-'))
const here = (name) => new URL(name, import.meta.url).pathname
const cpuMicros = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100 // utime + stime, in clock ticks of 10 ms
}

const servers = {}
try {
  const echo = spawnNode(here('echo-server.mjs'), {}, /"port":(\d+)/)
  servers.echo = { child: echo.child, url: `http://127.0.0.1:${(await echo.matched)[1]}/echo` }
  const builds = { after: MAIN_JS, ...(values.base ? { before: join(resolve(values.base), 'main.js') } : {}) }
  for (const [name, script] of Object.entries(builds)) {
    const s = spawnNode(
      script,
      { HOST: '127.0.0.1', PORT: '0', CARE_DATA_DIR: join(tmp, name), LOG_LEVEL: 'info', ...env },
      /"port":(\d+).*listening/,
    )
    servers[name] = { child: s.child, url: `http://127.0.0.1:${(await s.matched)[1]}/sessions.start` }
  }
  const names = Object.keys(servers)
  const connections = Number(values.connections)
  for (const name of names) await load(servers[name].url, { duration: 2, connections })
  const rows = []
  for (let round = 0; round < Number(values.rounds); round++) {
    const row = {}
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]
      const pid = servers[name].child.pid
      const cpu0 = cpuMicros(pid)
      const r = await load(servers[name].url, { duration: Number(values.duration), connections })
      const cpu = cpuMicros(pid) - cpu0
      if (r.non2xx + r.errors + r.timeouts > 0)
        throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`)
      row[name] = { rps: r.requests.average, p99: r.latency.p99, cpuUs: cpu / r.requests.total }
    }
    rows.push(row)
    console.log(
      `round ${round + 1}: ` +
        names
          .map(
            (n) =>
              `${n} ${row[n].rps.toFixed(0)} req/s p99 ${row[n].p99} ms ${row[n].cpuUs.toFixed(0)} µs/req`,
          )
          .join('; '),
      `| after/echo ${(row.after.rps / row.echo.rps).toFixed(3)}` +
        (row.before
          ? ` before/echo ${(row.before.rps / row.echo.rps).toFixed(3)} after/before ${(row.after.rps / row.before.rps).toFixed(3)} cpu before/after ${(row.before.cpuUs / row.after.cpuUs).toFixed(3)}`
          : ''),
    )
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2
  }
  const summary = { rounds: rows.length, duration_s: Number(values.duration), connections }
  for (const n of names) {
    summary[`${n}_cpu_us_per_req_median`] = Math.round(median(rows.map((r) => r[n].cpuUs)))
    summary[`${n}_p99_ms_median`] = median(rows.map((r) => r[n].p99))
  }
  summary.after_echo_ratio_median = median(rows.map((r) => r.after.rps / r.echo.rps))
  summary.after_echo_p99_ratio_median = median(rows.map((r) => r.after.p99 / r.echo.p99))
  summary.echo_cpu_over_after_cpu_median = median(rows.map((r) => r.echo.cpuUs / r.after.cpuUs))
  summary.after_echo_ratio_range = [
    Math.min(...rows.map((r) => r.after.rps / r.echo.rps)),
    Math.max(...rows.map((r) => r.after.rps / r.echo.rps)),
  ]
  if (servers.before) {
    summary.before_echo_ratio_median = median(rows.map((r) => r.before.rps / r.echo.rps))
    summary.after_before_rps_median = median(rows.map((r) => r.after.rps / r.before.rps))
    summary.after_before_rps_range = [
      Math.min(...rows.map((r) => r.after.rps / r.before.rps)),
      Math.max(...rows.map((r) => r.after.rps / r.before.rps)),
    ]
    summary.before_after_cpu_median = median(rows.map((r) => r.before.cpuUs / r.after.cpuUs))
  }
  console.log(JSON.stringify(summary, null, 2))
} finally {
  for (const s of Object.values(servers)) await stop(s.child)
  rmSync(tmp, { recursive: true, force: true })
}
