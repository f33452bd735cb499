// The guard middleware's own CPU per request, in process: no network, no framework, so far less
// sensitive to a shared machine than the HTTP benchmark. Express: the middleware on a real
// IncomingMessage with a JSON body pushed into it. Hono: the middleware with a minimal context over
// a real IncomingMessage (the @hono/node-server path: the guard reads Node's stream). Each request
// also pays for building the IncomingMessage (printed separately), so compare builds, not absolutes.
// `node bench/guard-inprocess.mjs [label=dist-dir ...]` compares builds in alternating rounds
// (default: this package's dist), e.g. `before=/tmp/old/dist after=dist`. N requests per round (20,000).
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const builds = Object.fromEntries(
  (args.length ? args : [`this=${new URL('../dist', import.meta.url).pathname}`]).map((arg) => {
    const at = arg.indexOf('=')
    return [arg.slice(0, at), pathToFileURL(resolve(arg.slice(at + 1))).href]
  }),
)
const labels = Object.keys(builds)
const ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
const mods = {}
for (const [k, dir] of Object.entries(builds))
  mods[k] = { express: await import(`${dir}/express/index.js`), hono: await import(`${dir}/hono/index.js`) }
const socket = new Socket()
function incoming(kind, i) {
  const req = new IncomingMessage(socket)
  const body = JSON.stringify({
    ...(kind === 'body' ? { session_id: ID } : {}),
    schema_version: '1.1',
    record_id: `r${i}`,
    text: 'a note of ordinary length for a care record',
  })
  req.method = 'POST'
  req.url = '/work'
  req.headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    ...(kind === 'header' ? { 'x-session-id': ID } : {}),
  }
  req.push(Buffer.from(body))
  req.push(null)
  return req
}
async function expressOnce(guard, kind, i) {
  const req = incoming(kind, i)
  req.originalUrl = req.url
  req.body = undefined
  await new Promise((resolve, reject) => guard(req, {}, (err) => (err ? reject(err) : resolve())))
  if (req.sessionId !== ID) throw new Error('not accepted')
}
// What the guard uses of HonoRequest 4.13 (text() and json() answer from the body cache).
class FakeHonoRequest {
  constructor(inc) {
    this.path = '/work'
    this.method = 'POST'
    this.url = 'http://x/work'
    this.bodyCache = {}
    this.raw = {}
    this.inc = inc
  }
  header(name) {
    return this.inc.headers[name]
  }
  text() {
    return this.bodyCache.text
  }
  json() {
    return this.bodyCache.text.then(JSON.parse)
  }
}
async function honoOnce(guard, kind, i) {
  const inc = incoming(kind, i)
  const vars = new Map()
  const c = {
    req: new FakeHonoRequest(inc),
    env: { incoming: inc },
    set: (k, v) => vars.set(k, v),
  }
  await guard(c, async () => {
    await c.req.json()
  })
  if (vars.get('sessionId') !== ID) throw new Error('not accepted')
}
const N = Number(process.env.N ?? 20000)
const results = {}
for (let round = 0; round < 6; round++)
  for (const fw of ['express', 'hono'])
    for (const kind of ['header', 'body'])
      for (const build of round % 2 ? [...labels].reverse() : labels) {
        const guard = mods[build][fw].sessionGuard()
        const once = fw === 'express' ? expressOnce : honoOnce
        for (let i = 0; i < 2000; i++) await once(guard, kind, i)
        const t0 = process.cpuUsage()
        for (let i = 0; i < N; i++) await once(guard, kind, i)
        const t = process.cpuUsage(t0)
        const us = (t.user + t.system) / N
        const key = `${fw} ${kind} ${build}`
        if (results[key] === undefined) results[key] = []
        results[key].push(us)
      }
// What building the IncomingMessage and pushing its body costs alone (printed, part of every figure)
const base = []
for (let round = 0; round < 6; round++) {
  const t0 = process.cpuUsage()
  for (let i = 0; i < N; i++) incoming('body', i)
  const t = process.cpuUsage(t0)
  base.push((t.user + t.system) / N)
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
console.log(`request construction (not the guard): ${med(base).toFixed(2)} us`)
for (const [k, v] of Object.entries(results))
  console.log(
    `${k.padEnd(22)} median ${med(v).toFixed(2)} us/request incl. construction (rounds ${v.map((x) => x.toFixed(2)).join(' ')})`,
  )
