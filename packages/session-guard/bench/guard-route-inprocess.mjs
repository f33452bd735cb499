// Whole Hono and Express routes in process: a real `IncomingMessage` carrying the echo's JSON body
// goes through @hono/node-server's request listener (or an Express app) into a `ServerResponse`
// whose socket discards what it is sent. No network and no load generator, so the CPU per request
// of the unguarded route, the same route behind an empty middleware and behind `sessionGuard()` can
// be compared in alternating rounds with far less noise than the HTTP benchmark (the ratios it
// prints are CPU-per-request ratios, unguarded / variant, the HTTP benchmark's "CPU-derived" column).
// `node bench/guard-route-inprocess.mjs [label=dist-dir ...]` compares builds of the guard
// (default: this package's dist). N requests per round (env N, default 5000), ROUNDS rounds (8).
// Hono routes are also measured as `guarded(echo)` (variant "handler <label>"), for builds that have it.
// PROMISES=1 instead counts the promises each route creates per request (exact, load-independent).
import { IncomingMessage, ServerResponse } from 'node:http'
import { resolve } from 'node:path'
import { Duplex } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { getRequestListener } from '@hono/node-server'
import express from 'express'
import { Hono } from 'hono'

const args = process.argv.slice(2)
const builds = Object.fromEntries(
  (args.length ? args : [`this=${new URL('../dist', import.meta.url).pathname}`]).map((arg) => {
    const at = arg.indexOf('=')
    return [arg.slice(0, at), pathToFileURL(resolve(arg.slice(at + 1))).href]
  }),
)
const ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const N = Number(process.env.N ?? 5000)
const ROUNDS = Number(process.env.ROUNDS ?? 8)
const FRAMEWORKS = (process.env.FRAMEWORKS ?? 'hono,express').split(',')
const KINDS = (process.env.KINDS ?? 'header,body').split(',')

/** A socket that takes whatever the response writes and drops it. */
class NullSocket extends Duplex {
  _read() {}
  _write(_chunk, _encoding, callback) {
    callback()
  }
  _writev(_chunks, callback) {
    callback()
  }
}

let sent = 0
function exchange(kind) {
  // Two sockets: a request read to its end destroys its own, which the response must not write to.
  const req = new IncomingMessage(new NullSocket())
  const body = JSON.stringify({
    ...(kind === 'body' ? { session_id: ID } : {}),
    schema_version: '1.1',
    record_id: `r${(sent++).toString(36)}`,
    text: 'a note of ordinary length for a care record',
  })
  req.method = 'POST'
  req.url = '/work'
  req.headers = {
    host: '127.0.0.1',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    ...(kind === 'header' ? { 'x-session-id': ID } : {}),
  }
  req.rawHeaders = Object.entries(req.headers).flat()
  const res = new ServerResponse(req)
  res.assignSocket(new NullSocket())
  const done = new Promise((resolve) => res.once('finish', resolve))
  // As Node's HTTP parser does for a request that arrives in one packet: the route starts on the
  // headers, and the body, its end and `complete` follow synchronously, before any promise job runs.
  const arrive = () => {
    req.push(Buffer.from(body))
    req.push(null)
    req.complete = true
  }
  return { req, res, done, arrive }
}

async function honoListener(variant, guardModule) {
  const app = new Hono()
  const before =
    variant === 'guarded'
      ? [guardModule.sessionGuard()]
      : variant === 'passthrough'
        ? [
            async function passthrough(_c, next) {
              await next()
            },
          ]
        : []
  const echo = async (c) => c.json(await c.req.json())
  // `handler`: the guard as the route's one handler (`guarded(echo)`), no middleware in front.
  app.post('/work', ...before, variant === 'handler' ? guardModule.guarded(echo) : echo)
  return getRequestListener(app.fetch)
}

async function expressListener(variant, guardModule) {
  const app = express()
  app.disable('x-powered-by')
  const before =
    variant === 'guarded'
      ? [guardModule.sessionGuard()]
      : variant === 'passthrough'
        ? [(_req, _res, next) => next()]
        : []
  app.post('/work', ...before, express.json(), (req, res) => {
    res.json(req.body)
  })
  return app
}

const routes = []
for (const framework of FRAMEWORKS)
  for (const kind of KINDS) {
    const variants = { unguarded: undefined, passthrough: undefined }
    for (const [label, dir] of Object.entries(builds)) variants[`guarded ${label}`] = dir
    // The handler form, for each build that has it (Hono's `guarded`, from this task on).
    if (framework === 'hono')
      for (const [label, dir] of Object.entries(builds))
        if (typeof (await import(`${dir}/hono/index.js`)).guarded === 'function')
          variants[`handler ${label}`] = dir
    for (const [variant, dir] of Object.entries(variants)) {
      const guardModule = dir ? await import(`${dir}/${framework}/index.js`) : undefined
      const name = variant.startsWith('guarded')
        ? 'guarded'
        : variant.startsWith('handler')
          ? 'handler'
          : variant
      const listener =
        framework === 'hono'
          ? await honoListener(name, guardModule)
          : await expressListener(name, guardModule)
      routes.push({ framework, kind, variant, listener, cpu: [] })
    }
  }

async function load(route, n) {
  // 10 requests in flight, like the HTTP benchmark's 10 connections.
  let next = 0
  async function lane() {
    while (next < n) {
      next++
      const { req, res, done, arrive } = exchange(route.kind)
      route.listener(req, res)
      arrive()
      await done
      if (res.statusCode !== 200) throw new Error(`${route.framework} ${route.variant}: ${res.statusCode}`)
    }
  }
  await Promise.all(Array.from({ length: 10 }, lane))
}

for (const route of routes) await load(route, 2000)
if (process.env.PROMISES === '1') {
  // Deterministic, whatever the machine's load: promises created per request (async_hooks init).
  const { createHook } = await import('node:async_hooks')
  let promises = 0
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++
    },
  })
  console.log('promises created per request (async_hooks), 1000 requests per route')
  for (const route of routes) {
    promises = 0
    hook.enable()
    await load(route, 1000)
    hook.disable()
    console.log(
      `${route.framework.padEnd(7)} ${route.kind.padEnd(6)} ${route.variant.padEnd(16)} ${(promises / 1000).toFixed(2)}`,
    )
  }
  process.exit(0)
}
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...routes].reverse() : routes
  for (const route of order) {
    const t0 = process.cpuUsage()
    await load(route, N)
    const t = process.cpuUsage(t0)
    route.cpu.push((t.user + t.system) / N)
  }
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2
}
console.log(`whole route in process, ${ROUNDS} alternating rounds x ${N} requests, node ${process.version}`)
for (const framework of FRAMEWORKS)
  for (const kind of KINDS) {
    const cell = routes.filter((r) => r.framework === framework && r.kind === kind)
    const base = cell.find((r) => r.variant === 'unguarded')
    for (const route of cell) {
      // Per-round ratio against the unguarded route of the same round: the host's drift cancels.
      const ratios = route.cpu.map((us, i) => base.cpu[i] / us)
      const sorted = [...ratios].sort((a, b) => a - b)
      console.log(
        `${framework.padEnd(7)} ${kind.padEnd(6)} ${route.variant.padEnd(16)} ${median(route.cpu).toFixed(2).padStart(7)} us/req` +
          `  unguarded/this: median ${median(ratios).toFixed(3)} (quartiles ${sorted[Math.floor(sorted.length / 4)].toFixed(3)}–${sorted[Math.ceil((3 * sorted.length) / 4) - 1].toFixed(3)})`,
      )
    }
  }
