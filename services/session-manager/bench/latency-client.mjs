#!/usr/bin/env node
// A small closed-loop HTTP load client with microsecond latencies (autocannon records whole
// milliseconds in its HDR histogram, lowestDiscernibleValue 1 ms, so it cannot show a 0.5 ms p50).
//   node bench/latency-client.mjs --connections 10 --requests 20000 --seconds 5 --warmup 500 <url>...
// Each of `connections` keep-alive sockets (one node:http Agent, maxSockets = connections) loops
// request -> whole response -> next request; the URLs are taken round-robin (one URL: the same one
// every time; many: e.g. distinct sessions, so no cache hits). Stops after `requests` measured
// requests or `seconds`, whichever comes first (bounded); `warmup` requests before that are not
// measured. Latency is process.hrtime.bigint() from request() to the response's 'end', in µs;
// percentiles are read from the sorted samples (nearest rank). Prints one JSON line.
// A URL written `name=url` belongs to series `name` (default: `all`); with several series every
// connection takes them in turn, so e.g. the floor and the timeline see the same noise of a shared box,
// and figures are printed per series.
// `measureLatency` runs it in a child process, so the client and the server each get a core.
import { spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const SCRIPT = fileURLToPath(import.meta.url)

/**
 * Runs this client in a child process against `urls` and resolves with its figures per series:
 * `{ <series>: { requests, non2xx, errors, seconds, rps, p50_us, p90_us, p99_us, max_us } }`.
 */
export function measureLatency(
  urls,
  { connections = 10, requests = 20_000, seconds = 5, warmup = 500 } = {},
) {
  const args = [
    SCRIPT,
    '--connections',
    String(connections),
    '--requests',
    String(requests),
    '--seconds',
    String(seconds),
    '--warmup',
    String(warmup),
    ...urls,
  ]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`latency client exited with ${code}`))
      else resolve(JSON.parse(out))
    })
  })
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

async function main() {
  const { values, positionals: urls } = parseArgs({
    allowPositionals: true,
    options: {
      connections: { type: 'string', default: '10' },
      requests: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '500' },
    },
  })
  if (urls.length === 0) throw new Error('no URL given')
  const connections = Number(values.connections)
  const limit = Number(values.requests)
  const warmup = Number(values.warmup)
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const series = new Map()
  for (const arg of urls) {
    const at = arg.indexOf('=')
    const [name, url] =
      at > 0 && !arg.slice(0, at).includes('/') ? [arg.slice(0, at), arg.slice(at + 1)] : ['all', arg]
    if (!series.has(name)) series.set(name, { urls: [], samples: [], non2xx: 0, errors: 0, next: 0 })
    series.get(name).urls.push(url)
  }
  const groups = [...series.values()]
  let issued = 0
  let started = 0n
  let deadline = Number.POSITIVE_INFINITY
  const once = (url) =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint()
      const req = request(url, { agent }, (res) => {
        res.on('data', () => {})
        res.on('end', () =>
          resolve({ us: Number(process.hrtime.bigint() - t0) / 1000, status: res.statusCode }),
        )
      })
      req.on('error', () => resolve({ us: -1, status: 0 }))
      req.end()
    })
  const loop = async () => {
    for (;;) {
      if (issued >= warmup + limit || performance.now() > deadline) return
      const n = issued++
      const group = groups[n % groups.length]
      const { us, status } = await once(group.urls[group.next++ % group.urls.length])
      if (n === warmup - 1 || (warmup === 0 && n === 0)) {
        started = process.hrtime.bigint()
        deadline = performance.now() + Number(values.seconds) * 1000
      }
      if (n < warmup) continue
      if (us < 0) group.errors++
      else if (status < 200 || status > 299) group.non2xx++
      if (us >= 0) group.samples.push(us)
    }
  }
  // Warm-up deadline too, so a stuck server cannot hang the run.
  deadline = performance.now() + (Number(values.seconds) + 30) * 1000
  started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: connections }, loop))
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9
  agent.destroy()
  const round = (v) => (v === null ? null : Math.round(v))
  const out = {}
  for (const [name, group] of series) {
    const sorted = Float64Array.from(group.samples).sort()
    out[name] = {
      requests: sorted.length,
      non2xx: group.non2xx,
      errors: group.errors,
      seconds: +elapsed.toFixed(2),
      rps: Math.round(sorted.length / elapsed),
      p50_us: round(percentile(sorted, 50)),
      p90_us: round(percentile(sorted, 90)),
      p99_us: round(percentile(sorted, 99)),
      max_us: round(percentile(sorted, 100)),
    }
  }
  console.log(JSON.stringify(out))
}

if (process.argv[1] === SCRIPT) await main()
