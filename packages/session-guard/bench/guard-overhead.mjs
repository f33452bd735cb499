// Guarded vs unguarded throughput, Express and Hono, in one run.
//
// Servers run in a child process (one per framework) and autocannon in this process, so on a
// 2-core machine the load generator and the server each get a core instead of sharing one event
// loop. Each child listens three times with identical apps: the bare route, the route behind an
// empty middleware (to separate the framework's cost of having any middleware from the guard's
// own work) and the route behind the guard; all share one JIT and GC state. Requests are identical
// (GET with x-session-id; the handler answers the same bytes). Runs rotate (U,P,G / P,G,U / ...)
// to spread drift on a shared machine; the median of per-round ratios keeps a burst of other work
// from deciding the result, and server CPU time per request (process.cpuUsage in the child) is
// reported beside req/s because it is far less sensitive to other load.
// Bounded: ROUNDS x 3 x SECONDS per framework plus warm-up (about 90 s with the defaults).
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const SESSION_ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const FRAMEWORKS = ['express', 'hono']
const VARIANTS = ['unguarded', 'passthrough', 'guarded']
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const WARMUP_SECONDS = 1
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const GOAL = 0.97
// BENCH_METRICS=1 puts the services' request observer (@care/observability: Prometheus metrics and
// the access-log decision, tracing off) in front of every variant, so the guard's overhead is
// measured with metrics on, as the services run.
const METRICS = process.env.BENCH_METRICS === '1'
// BENCH_REQUEST picks where the id travels (issue 18 asks for header and body):
//   header       GET with x-session-id, no body (the default)
//   body         POST with the id in the JSON body; every variant's handler reads the parsed body
//   header-body  POST with x-session-id and a JSON body without it (the guard reads it for conflicts)
const REQUEST = process.env.BENCH_REQUEST ?? 'header'
if (!['header', 'body', 'header-body'].includes(REQUEST)) throw new Error(`BENCH_REQUEST=${REQUEST}?`)
const WITH_BODY = REQUEST !== 'header'
const REQUEST_BODY = JSON.stringify({
  ...(REQUEST === 'body' ? { session_id: SESSION_ID } : {}),
  schema_version: '1.1',
  record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P1',
  text: 'a note of ordinary length for a care record',
})

if (process.argv[2] === '--serve') await serve(process.argv[3])
else await main()

async function serve(framework) {
  const handlerBody = JSON.stringify({ ok: true })
  const ports = {}
  const observer = METRICS ? await requestObserver() : undefined
  if (framework === 'express') {
    const { default: express } = await import('express')
    const { sessionErrorHandler, sessionGuard } = await import('@care/session-guard/express')
    const middleware = {
      passthrough: function passthrough(_req, _res, next) {
        next()
      },
      guarded: sessionGuard(),
    }
    for (const variant of VARIANTS) {
      const app = express()
      app.disable('x-powered-by')
      if (observer)
        app.use((req, res, next) => {
          const request = observer.begin(req.method, req.headers)
          res.once('close', () =>
            request.end({ route: req.route ? req.route.path : 'unmatched', status: res.statusCode }),
          )
          next()
        })
      const handler = WITH_BODY
        ? (req, res) => {
            res.type('json').send(`{"ok":${typeof req.body.record_id === 'string'}}`)
          }
        : (_req, res) => {
            res.type('json').send(handlerBody)
          }
      const method = WITH_BODY ? 'post' : 'get'
      // With a body, every variant parses it with express.json(); behind the guard it runs after
      // the guard, which has already read and parsed the body (body-parser then skips the request).
      const chain = [middleware[variant], ...(WITH_BODY ? [express.json()] : [])].filter(Boolean)
      app[method]('/work', ...chain, handler)
      app.use(sessionErrorHandler())
      ports[variant] = await new Promise((resolve) => {
        const server = app.listen(0, '127.0.0.1', () => resolve(server.address().port))
      })
    }
  } else {
    const { Hono } = await import('hono')
    const { serve: listen } = await import('@hono/node-server')
    const { sessionGuard } = await import('@care/session-guard/hono')
    const middleware = {
      passthrough: async function passthrough(_c, next) {
        await next()
      },
      guarded: sessionGuard(),
    }
    for (const variant of VARIANTS) {
      const app = new Hono()
      if (observer)
        app.use(async (c, next) => {
          const request = observer.begin(c.req.method, c.req.raw.headers)
          await next()
          request.end({ route: c.req.routePath, status: c.res.status })
        })
      const handler = WITH_BODY
        ? async (c) =>
            c.body(`{"ok":${typeof (await c.req.json()).record_id === 'string'}}`, 200, {
              'content-type': 'application/json',
            })
        : (c) => c.body(handlerBody, 200, { 'content-type': 'application/json' })
      const method = WITH_BODY ? 'post' : 'get'
      if (middleware[variant]) app[method]('/work', middleware[variant], handler)
      else app[method]('/work', handler)
      ports[variant] = await new Promise((resolve) => {
        listen({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port))
      })
    }
  }
  process.on('message', () => {
    const { user, system } = process.cpuUsage()
    process.send({ cpuMicros: user + system })
  })
  process.send({ ports })
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

function serverCpu(child) {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message.cpuMicros))
    child.send('cpu')
  })
}

function run(url, seconds) {
  return autocannon({ url, connections: CONNECTIONS, duration: seconds, ...requestShape() })
}

function requestShape() {
  if (!WITH_BODY) return { headers: { 'x-session-id': SESSION_ID } }
  return {
    method: 'POST',
    body: REQUEST_BODY,
    headers: {
      'content-type': 'application/json',
      ...(REQUEST === 'header-body' ? { 'x-session-id': SESSION_ID } : {}),
    },
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = (sorted.length - 1) / 2
  return (sorted[Math.floor(mid)] + sorted[Math.ceil(mid)]) / 2
}

async function measure(framework, child, urls) {
  const { headers, method, body } = requestShape()
  const probe = await fetch(urls.guarded, { method, headers, body })
  const rejected = await fetch(urls.guarded, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(WITH_BODY ? { body: '{}' } : {}),
  })
  if (probe.status !== 200 || rejected.status !== 400) throw new Error(`${framework}: guard is not wired`)
  for (const variant of VARIANTS) await run(urls[variant], WARMUP_SECONDS)

  const requests = Object.fromEntries(VARIANTS.map((v) => [v, 0]))
  const cpu = Object.fromEntries(VARIANTS.map((v) => [v, 0]))
  const ratios = []
  for (let round = 0; round < ROUNDS; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length])
    const rps = {}
    for (const variant of order) {
      const cpuBefore = await serverCpu(child)
      const result = await run(urls[variant], SECONDS)
      cpu[variant] += (await serverCpu(child)) - cpuBefore
      if (result.non2xx > 0 || result.errors > 0)
        throw new Error(`${framework} ${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      rps[variant] = result.requests.total / SECONDS
      requests[variant] += result.requests.total
    }
    ratios.push(rps.guarded / rps.unguarded)
    console.log(
      `${framework.padEnd(8)} round ${round + 1}: ` +
        VARIANTS.map((v) => `${v} ${rps[v].toFixed(0).padStart(6)}`).join(', ') +
        ` req/s; guarded/unguarded ${ratios.at(-1).toFixed(3)}`,
    )
  }
  const perRequest = Object.fromEntries(VARIANTS.map((v) => [v, cpu[v] / requests[v]]))
  return {
    framework,
    rps: Object.fromEntries(VARIANTS.map((v) => [v, requests[v] / (ROUNDS * SECONDS)])),
    totalRatio: requests.guarded / requests.unguarded,
    medianRatio: median(ratios),
    cpu: perRequest,
    cpuRatio: perRequest.unguarded / perRequest.guarded,
    cpuRatioVsPassthrough: perRequest.passthrough / perRequest.guarded,
  }
}

async function main() {
  if (!existsSync(new URL('../dist/express/index.js', import.meta.url))) {
    console.error('dist/ is missing: run `pnpm turbo run build --filter=@care/session-guard` first.')
    process.exit(1)
  }
  console.log(
    `session-guard overhead: ${ROUNDS} rotating rounds x ${SECONDS}s per variant, ${CONNECTIONS} connections, ` +
      `${WITH_BODY ? 'POST' : 'GET'} /work, id in ${REQUEST}, metrics ${METRICS ? 'on' : 'off'}, node ${process.version}\n`,
  )
  const summary = []
  for (const framework of FRAMEWORKS) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', framework], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    try {
      const { ports } = await new Promise((resolve, reject) => {
        child.once('message', resolve)
        child.once('exit', (code) => reject(new Error(`${framework} server exited with ${code}`)))
      })
      const urls = Object.fromEntries(VARIANTS.map((v) => [v, `http://127.0.0.1:${ports[v]}/work`]))
      summary.push(await measure(framework, child, urls))
    } finally {
      child.kill()
    }
  }
  console.log('\nreq/s (mean over rounds) and server CPU per request')
  for (const s of summary)
    console.log(
      `${s.framework.padEnd(8)} ` +
        VARIANTS.map((v) => `${v} ${s.rps[v].toFixed(0)} req/s (${s.cpu[v].toFixed(1)} us CPU/req)`).join(
          ', ',
        ),
    )
  console.log(`\nguarded/unguarded (goal >= ${GOAL})`)
  for (const s of summary)
    console.log(
      `${s.framework.padEnd(8)} req/s median-round ${s.medianRatio.toFixed(3)}, req/s total ${s.totalRatio.toFixed(3)}, ` +
        `CPU-derived ${s.cpuRatio.toFixed(3)} -> ${s.medianRatio >= GOAL ? 'met' : 'MISSED'}; ` +
        `guard vs empty middleware (CPU-derived) ${s.cpuRatioVsPassthrough.toFixed(3)}`,
    )
}
