// Guarded vs unguarded route, Express and Hono, with the services' request observer on and off, in
// one bounded run (issues 15 and 18).
//
// What is measured is issue 18's definition: the unguarded route is a JSON echo (Hono:
// `c.req.json()` then `c.json()`; Express: `express.json()` then `res.json(req.body)`), the guarded
// route is the same echo behind `sessionGuard()` with default options. Every request carries a
// unique JSON body (a new record_id each). Request kinds (BENCH_REQUESTS, comma list):
//   header  POST echo, the id in `x-session-id` (the guard still reads the body for a conflict)
//   body    POST echo, the id in the body's `session_id`
//   get     extra, stricter case: GET with `x-session-id` and a constant answer (no body at all)
// BENCH_METRICS (`off,on` by default; `1`/`0` accepted) puts the services' request observer
// (@care/observability: Prometheus metrics and the access-log decision, tracing off), wired as the
// services wire it, in front of every variant.
//
// Servers run in a child process per framework (autocannon in this one), so on a 2-core machine the
// load generator and the server each get a core. The child listens once per cell and variant, all
// sharing one JIT and GC state. Each round loads the variants of a cell one after another, in
// alternating order; a cell's verdict is the median of its per-round ratios (a burst of other work
// on a shared box spoils a round, not the result), and the server's CPU time per request
// (process.cpuUsage in the child, around each load) gives a second, far less load-sensitive ratio.
//
// BENCH_PROFILE=<dir> instead profiles each cell (metrics on unless BENCH_METRICS says otherwise):
// one child per framework, request kind and variant, sampled by V8's profiler (node:inspector) for
// BENCH_PROFILE_SECONDS of load after a warm-up, and prints the CPU split between the guard's own frames, the observer, the
// framework, Node and the GC (see bench/profile-areas.mjs).
//
// On Hono a `handler` variant is measured too: the echo as `guarded(echo)`, the guard as the route's
// one handler (its ratio to the unguarded route is printed beside the middleware form's).
//
// BENCH_PASSTHROUGH=1 adds a third variant, the route behind an empty middleware: what any
// middleware costs in the framework (on Hono, a route with one handler skips `compose`).
//
// Bounded: frameworks x kinds x metrics x variants x (ROUNDS x SECONDS + 1 s warm-up); about 5 min
// with the defaults (2 x 2 x 2 x 2 x (16 x 1 + 1) s). Each cell is printed with the quartiles of its
// per-round ratios (req/s and CPU) and how many rounds met the goal, so a verdict shows its spread.
import { fork } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { expressObserver, honoObserver } from './observer-middleware.mjs'
import { summarizeAreas } from './profile-areas.mjs'

const SESSION_ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const GOAL = 0.97
const list = (value, fallback) =>
  (value ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
const FRAMEWORKS = list(process.env.BENCH_FRAMEWORKS, 'express,hono')
const KINDS = list(process.env.BENCH_REQUESTS ?? process.env.BENCH_REQUEST, 'header,body')
const METRICS = list(
  process.env.BENCH_METRICS === '1'
    ? 'on'
    : process.env.BENCH_METRICS === '0'
      ? 'off'
      : process.env.BENCH_METRICS,
  'off,on',
)
const VARIANTS = ['unguarded', ...(process.env.BENCH_PASSTHROUGH === '1' ? ['passthrough'] : []), 'guarded']
/**
 * A framework's variants: on Hono also `handler`, the same echo wrapped in `guarded(handler)` (the
 * guard as the route's one handler, which keeps Hono's single-handler path); `guarded` stays the
 * middleware form. BENCH_HONO_HANDLER=0 leaves it out.
 */
const variantsOf = (framework) =>
  framework === 'hono' && process.env.BENCH_HONO_HANDLER !== '0' ? [...VARIANTS, 'handler'] : VARIANTS
// Many short interleaved slices rather than a few long ones (same bounded time): the host drifts by
// ±10 % between 2 s windows, and more paired rounds make the median and its quartiles steadier.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 16)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1)
const WARMUP_SECONDS = 1
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const PROFILE_DIR = process.env.BENCH_PROFILE
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 6)
let sent = 0 // requests given a body so far (makes each record_id unique)
for (const kind of KINDS)
  if (!['header', 'body', 'get'].includes(kind)) throw new Error(`request kind ${kind}?`)
for (const m of METRICS) if (!['on', 'off'].includes(m)) throw new Error(`BENCH_METRICS=${m}?`)

/** A cell: one framework's route for one request kind, with the observer on or off. */
const cellKey = (kind, metrics, variant) => `${kind}/${metrics}/${variant}`

if (process.argv[2] === '--serve') await serve(process.argv[3], JSON.parse(process.argv[4]))
else if (PROFILE_DIR) await profileAll()
else await main()

let profiler

/** Starts the V8 sampling profiler in this process; the returned function stops it and returns the profile. */
async function startProfiler() {
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    return profile
  }
}

/** Child: one server per requested cell, then answers CPU-time queries over IPC. */
async function serve(framework, cells) {
  const ports = {}
  for (const { kind, metrics, variant } of cells) {
    const observer = metrics === 'on' ? await requestObserver() : undefined
    const fetchOrApp =
      framework === 'express'
        ? await expressApp(kind, variant, observer)
        : await honoApp(kind, variant, observer)
    ports[cellKey(kind, metrics, variant)] = await fetchOrApp.listen()
  }
  process.on('message', async (message) => {
    if (message === 'profile-start') {
      profiler = await startProfiler()
      return process.send({ profiling: true })
    }
    if (message === 'profile-stop') return process.send({ profile: await profiler() })
    const { user, system } = process.cpuUsage()
    process.send({ cpuMicros: user + system })
  })
  // A server outlives nothing: it goes when the benchmark does, however that ends.
  process.on('disconnect', () => process.exit(0))
  process.send({ ports })
}

async function expressApp(kind, variant, observer) {
  const { default: express } = await import('express')
  const { sessionErrorHandler, sessionGuard } = await import('@care/session-guard/express')
  const app = express()
  app.disable('x-powered-by')
  if (observer) app.use(expressObserver(observer))
  const before =
    variant === 'guarded' ? [sessionGuard()] : variant === 'passthrough' ? [passthroughExpress] : []
  if (kind === 'get') {
    const answer = JSON.stringify({ ok: true })
    app.get('/work', ...before, (_req, res) => {
      res.type('json').send(answer)
    })
  } else {
    // Behind the guard, express.json() finds the body already read and parsed (it skips the request).
    app.post('/work', ...before, express.json(), (req, res) => {
      res.json(req.body)
    })
  }
  app.use(sessionErrorHandler())
  return {
    listen: () =>
      new Promise((resolve) => {
        const server = app.listen(0, '127.0.0.1', () => resolve(server.address().port))
      }),
  }
}

function passthroughExpress(_req, _res, next) {
  next()
}

async function honoApp(kind, variant, observer) {
  const { Hono } = await import('hono')
  const { serve: listen } = await import('@hono/node-server')
  const { guarded, sessionGuard } = await import('@care/session-guard/hono')
  const app = new Hono()
  // `handler`: the guard as the route's one handler, no middleware in front of the route.
  const wrap = variant === 'handler' ? guarded : (handler) => handler
  if (observer) app.use(await honoObserver(observer))
  const before =
    variant === 'guarded'
      ? [sessionGuard()]
      : variant === 'passthrough'
        ? [
            async function passthrough(_c, next) {
              await next()
            },
          ]
        : []
  if (kind === 'get') {
    const answer = JSON.stringify({ ok: true })
    app.get(
      '/work',
      ...before,
      wrap((c) => c.body(answer, 200, { 'content-type': 'application/json' })),
    )
  } else {
    app.post(
      '/work',
      ...before,
      wrap(async (c) => c.json(await c.req.json())),
    )
  }
  return {
    listen: () =>
      new Promise((resolve) => {
        listen({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port))
      }),
  }
}

async function requestObserver() {
  const { createHttpObserver, createServiceMetrics, startTracing } = await import('@care/observability')
  return createHttpObserver({
    metrics: createServiceMetrics({ service: 'bench' }),
    tracing: startTracing({ service: 'bench', env: {} }),
    logger: { info() {} },
    accessLogSample: 0,
  })
}

// ---- load side ----

function requestShape(kind) {
  if (kind === 'get') return { method: 'GET', headers: { 'x-session-id': SESSION_ID } }
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(kind === 'header' ? { 'x-session-id': SESSION_ID } : {}),
    },
  }
}

/** The JSON body of one request: unique per request (its record_id), as issue 18 measured. */
function bodyOf(kind, recordId) {
  return JSON.stringify({
    ...(kind === 'body' ? { session_id: SESSION_ID } : {}),
    schema_version: '1.1',
    record_id: recordId,
    text: 'a note of ordinary length for a care record',
  })
}

function run(url, kind, seconds) {
  const shape = requestShape(kind)
  const requests =
    kind === 'get'
      ? [shape]
      : [{ ...shape, setupRequest: (req) => ({ ...req, body: bodyOf(kind, `r${(sent++).toString(36)}`) }) }]
  return autocannon({ url, connections: CONNECTIONS, duration: seconds, requests })
}

function ask(child, message) {
  return new Promise((resolve) => {
    child.once('message', resolve)
    child.send(message)
  })
}

async function serverCpu(child) {
  return (await ask(child, 'cpu')).cpuMicros
}

/** The q-quantile of `values` (linear between neighbours): 0.5 is the median. */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (sorted.length - 1) * q
  return sorted[Math.floor(at)] + (sorted[Math.ceil(at)] - sorted[Math.floor(at)]) * (at - Math.floor(at))
}

function median(values) {
  return quantile(values, 0.5)
}

/** "median (lower quartile–upper quartile)" of per-round ratios. */
function spread(values) {
  return `${median(values).toFixed(3)} (${quantile(values, 0.25).toFixed(3)}–${quantile(values, 0.75).toFixed(3)})`
}

/** Checks the guarded route answers the echo and refuses a request without an id. */
async function probe(framework, kind, url) {
  const { method, headers } = requestShape(kind)
  const ok = await fetch(url, { method, headers, ...(kind === 'get' ? {} : { body: bodyOf(kind, 'probe') }) })
  const echoed = await ok.json()
  const rejected = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(kind === 'get' ? {} : { body: '{}' }),
  })
  const echoOk = kind === 'get' ? echoed.ok === true : echoed.record_id === 'probe'
  if (ok.status !== 200 || !echoOk || rejected.status !== 400)
    throw new Error(`${framework} ${kind}: the guarded route is not wired (${ok.status}, ${rejected.status})`)
}

function startChild(framework, cells) {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', framework, JSON.stringify(cells)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const ready = new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message.ports))
    child.once('exit', (code) => reject(new Error(`${framework} server exited with ${code}`)))
  })
  return { child, ready }
}

async function measureCell(framework, child, ports, kind, metrics) {
  const VARIANTS = variantsOf(framework)
  const urls = Object.fromEntries(
    VARIANTS.map((v) => [v, `http://127.0.0.1:${ports[cellKey(kind, metrics, v)]}/work`]),
  )
  await probe(framework, kind, urls.guarded)
  if (urls.handler) await probe(framework, kind, urls.handler)
  for (const variant of VARIANTS) await run(urls[variant], kind, WARMUP_SECONDS)
  const rpsRatios = []
  const cpuRatios = []
  const passthroughRatios = []
  const handlerRatios = []
  const handlerCpuRatios = []
  const totals = Object.fromEntries(VARIANTS.map((v) => [v, { requests: 0, cpu: 0 }]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length])
    const rps = {}
    const cpu = {}
    for (const variant of order) {
      const before = await serverCpu(child)
      const result = await run(urls[variant], kind, SECONDS)
      const used = (await serverCpu(child)) - before
      if (result.non2xx > 0 || result.errors > 0)
        throw new Error(`${framework} ${kind} ${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      rps[variant] = result.requests.total / SECONDS
      cpu[variant] = used / result.requests.total
      totals[variant].requests += result.requests.total
      totals[variant].cpu += used
    }
    rpsRatios.push(rps.guarded / rps.unguarded)
    if (rps.passthrough !== undefined) passthroughRatios.push(rps.passthrough / rps.unguarded)
    cpuRatios.push(cpu.unguarded / cpu.guarded)
    if (rps.handler !== undefined) {
      handlerRatios.push(rps.handler / rps.unguarded)
      handlerCpuRatios.push(cpu.unguarded / cpu.handler)
    }
  }
  const cell = {
    framework,
    kind,
    metrics,
    rps: Object.fromEntries(VARIANTS.map((v) => [v, totals[v].requests / (ROUNDS * SECONDS)])),
    cpu: Object.fromEntries(VARIANTS.map((v) => [v, totals[v].cpu / totals[v].requests])),
    medianRatio: median(rpsRatios),
    ratioRange: [Math.min(...rpsRatios), Math.max(...rpsRatios)],
    rpsSpread: spread(rpsRatios),
    cpuRatio: median(cpuRatios),
    cpuSpread: spread(cpuRatios),
    roundsMet: rpsRatios.filter((r) => r >= GOAL).length,
    handler: handlerRatios.length
      ? {
          medianRatio: median(handlerRatios),
          rpsSpread: spread(handlerRatios),
          cpuRatio: median(handlerCpuRatios),
          cpuSpread: spread(handlerCpuRatios),
          roundsMet: handlerRatios.filter((r) => r >= GOAL).length,
        }
      : undefined,
  }
  console.log(
    `${framework.padEnd(7)} ${kind.padEnd(6)} metrics ${metrics.padEnd(3)}  ` +
      VARIANTS.map(
        (v) =>
          `${v} ${cell.rps[v].toFixed(0).padStart(6)} req/s ${cell.cpu[v].toFixed(1).padStart(6)} us/req`,
      ).join('  ') +
      `  guarded/unguarded: median round ${cell.rpsSpread} ` +
      `[min-max ${cell.ratioRange.map((r) => r.toFixed(3)).join('-')}], CPU ${cell.cpuSpread}` +
      (passthroughRatios.length ? `; empty middleware/unguarded ${spread(passthroughRatios)}` : '') +
      (handlerRatios.length
        ? `; guarded(handler)/unguarded ${spread(handlerRatios)}, CPU ${spread(handlerCpuRatios)}`
        : ''),
  )
  return cell
}

async function main() {
  requireBuild()
  console.log(
    `session-guard overhead: ${ROUNDS} alternating rounds x ${SECONDS}s per variant, ${CONNECTIONS} connections, ` +
      `requests ${KINDS.join(',')}, metrics ${METRICS.join(',')}, node ${process.version}, load average ` +
      `${loadAverage()}\n`,
  )
  const summary = []
  for (const framework of FRAMEWORKS) {
    const cells = KINDS.flatMap((kind) =>
      METRICS.flatMap((metrics) => variantsOf(framework).map((variant) => ({ kind, metrics, variant }))),
    )
    const { child, ready } = startChild(framework, cells)
    try {
      const ports = await ready
      for (const kind of KINDS)
        for (const metrics of METRICS) summary.push(await measureCell(framework, child, ports, kind, metrics))
    } finally {
      child.kill()
    }
  }
  console.log(
    `\nguarded / unguarded (goal >= ${GOAL}; verdict by the median of per-round req/s ratios; ` +
      '(quartiles) of the rounds; rounds at or above the goal)',
  )
  console.log(
    'framework  id in   metrics  req/s: median (quartiles)  CPU-derived: median (quartiles)  rounds met  verdict',
  )
  const row = (framework, s) =>
    `${framework.padEnd(10)} ${s.kind.padEnd(7)} ${s.metrics.padEnd(8)} ${s.rpsSpread.padStart(25)} ` +
    `${s.cpuSpread.padStart(33)}  ${`${s.roundsMet}/${ROUNDS}`.padStart(10)}  ${s.medianRatio >= GOAL ? 'met' : 'MISSED'}` +
    `${(s.medianRatio >= GOAL) !== (s.cpuRatio >= GOAL) ? ' (CPU disagrees)' : ''}`
  for (const s of summary) {
    console.log(row(s.framework, s))
    // The handler form's row: guarded(handler) / unguarded, in the same rounds.
    if (s.handler) console.log(row(`${s.framework}(h)`, { ...s.handler, kind: s.kind, metrics: s.metrics }))
  }
  console.log(`load average at the end ${loadAverage()}`)
}

/** Profiles every cell in its own child, so each profile holds one route's work only. */
async function profileAll() {
  requireBuild()
  const dir = resolve(PROFILE_DIR)
  mkdirSync(dir, { recursive: true })
  const metrics = process.env.BENCH_METRICS === undefined ? 'on' : METRICS[METRICS.length - 1]
  console.log(
    `profiles: ${PROFILE_SECONDS}s of load per route, ${CONNECTIONS} connections, metrics ${metrics}, into ${dir}; ` +
      `load average ${loadAverage()}\n`,
  )
  for (const framework of FRAMEWORKS)
    for (const kind of KINDS)
      for (const variant of variantsOf(framework)) {
        const name = `${framework}-${kind}-${metrics}-${variant}`
        const { child, ready } = startChild(framework, [{ kind, metrics, variant }])
        let profile
        let result
        let cpuPerRequest
        try {
          const ports = await ready
          const url = `http://127.0.0.1:${ports[cellKey(kind, metrics, variant)]}/work`
          if (variant === 'guarded' || variant === 'handler') await probe(framework, kind, url)
          await run(url, kind, WARMUP_SECONDS * 2)
          await ask(child, 'profile-start')
          const before = await serverCpu(child)
          result = await run(url, kind, PROFILE_SECONDS)
          cpuPerRequest = ((await serverCpu(child)) - before) / result.requests.total
          profile = (await ask(child, 'profile-stop')).profile
        } finally {
          child.kill()
        }
        writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
        const areas = summarizeAreas(profile)
        console.log(
          `${name}: ${(result.requests.total / PROFILE_SECONDS).toFixed(0)} req/s, ${cpuPerRequest.toFixed(1)} us CPU/req; ` +
            `busy CPU: ${areas.text}`,
        )
      }
}

function requireBuild() {
  if (!existsSync(new URL('../dist/express/index.js', import.meta.url))) {
    console.error('dist/ is missing: run `pnpm turbo run build --filter=@care/session-guard` first.')
    process.exit(1)
  }
}

function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {
    return 'n/a'
  }
}
