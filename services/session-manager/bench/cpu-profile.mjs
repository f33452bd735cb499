#!/usr/bin/env node
// CPU profile of the session-manager under the start benchmark's load (issue 18): runs the built
// service with `node --cpu-prof`, drives `POST /sessions.start` (or another path) with autocannon
// for a bounded time, stops it with SIGTERM and prints the top self-time functions and packages.
// `node bench/cpu-profile.mjs [--path /sessions.start] [--duration 8] [--top 25]`; extra service
// environment as `--env NAME=value` (repeatable). The .cpuprofile file is kept in --out (tmp).
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { load, MAIN_JS, spawnNode, stop } from './lib.mjs'
import { summarizeProfile } from './profile-summary.mjs'

const { values } = parseArgs({
  options: {
    path: { type: 'string', default: '/sessions.start' },
    duration: { type: 'string', default: '8' },
    top: { type: 'string', default: '25' },
    env: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    script: { type: 'string' },
  },
})
const out = values.out ?? mkdtempSync(join(tmpdir(), 'care-prof-'))
const env = Object.fromEntries(
  values.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
)
const script = values.script ?? MAIN_JS
const { child, matched } = spawnNode(
  script,
  { HOST: '127.0.0.1', PORT: '0', CARE_DATA_DIR: join(out, 'data'), LOG_LEVEL: 'info', ...env },
  /"port":(\d+)/,
  [],
  ['--cpu-prof', `--cpu-prof-dir=${out}`],
)
const url = `http://127.0.0.1:${(await matched)[1]}${values.path}`
await load(url, { duration: 1 })
const r = await load(url, { duration: Number(values.duration) })
console.log(
  `${values.path}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`,
)
await stop(child)
const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'))
console.log(`profile: ${join(out, file)}`)
console.log(summarizeProfile(JSON.parse(readFileSync(join(out, file), 'utf8')), Number(values.top)))
