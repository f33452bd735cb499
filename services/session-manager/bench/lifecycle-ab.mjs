#!/usr/bin/env node
// In-process A/B of the embedded start path's CPU cost: `node bench/lifecycle-ab.mjs <baseline dist> [--starts 40000]`.
// Both sides run the lifecycle over the same in-memory event store (no fsync, no HTTP), alternating
// rounds in one process, and report CPU microseconds per acknowledged start. The baseline is a
// build of an earlier commit whose dist exports `SessionService` (the pre-port embedded service).
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ulid } from 'ulid'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { starts: { type: 'string', default: '40000' }, rounds: { type: 'string', default: '3' } },
})
const N = Number(values.starts)
const here = (p) => new URL(p, import.meta.url).pathname
const { createIdFactory } = await import(here('../dist/ids/id-factory.js'))
const { SessionLifecycleService } = await import(here('../dist/sessions/session-lifecycle.js'))
const { EmbeddedSessionRepository } = await import(here('../dist/store/embedded-session-repository.js'))
const baseDist = positionals[0] ? resolve(positionals[0]) : undefined
const policy = { idleTimeoutMs: 1_800_000, maxDurationMs: 86_400_000, retryWindowMs: 86_400_000 }

class MemoryStore {
  events = []
  async append(event) {
    const seq = this.events.length + 1
    const stored = { ...event, seq, prev_hash: String(seq - 1), hash: String(seq) }
    this.events.push(stored)
    return { stored, ref: seq - 1 }
  }
  async read(refs) {
    return refs.map((r) => this.events[r])
  }
  async *scan() {}
  head() {
    return { seq: this.events.length, hash: '' }
  }
  async close() {}
}

const body = () => ({
  schema_version: '1.1',
  record_id: ulid(),
  user_id: 'user-1',
  timestamp: new Date().toISOString(),
  source: 'ui',
  origin: 'human',
  performer_id: 'caregiver-1',
})

async function current() {
  const store = new MemoryStore()
  const repository = await EmbeddedSessionRepository.open(async () => store)
  const service = new SessionLifecycleService(repository, { policy, newId: createIdFactory(), timers: false })
  await service.recover()
  return service
}

async function baseline() {
  const { SessionService } = await import(`${baseDist}/sessions/session-service.js`)
  const service = new SessionService({ policy, newId: createIdFactory(), timers: false })
  const store = new MemoryStore()
  await service.recover(async () => store)
  return service
}

async function measure(open) {
  const service = await open()
  const inputs = Array.from({ length: N }, body)
  let next = 0
  const cpu = process.cpuUsage()
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < N) await service.start(inputs[next++])
    }),
  )
  const used = process.cpuUsage(cpu)
  await service.close()
  return (used.user + used.system) / N
}

const sides = baseDist
  ? [
      ['baseline', baseline],
      ['current', current],
    ]
  : [['current', current]]
const results = Object.fromEntries(sides.map(([name]) => [name, []]))
for (const [, open] of sides) await measure(open) // warm-up
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, open] of sides) results[name].push(await measure(open))
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (const [name] of sides)
  console.log(
    `${name}: ${median(results[name]).toFixed(2)} µs CPU per start (rounds ${results[name].map((x) => x.toFixed(2)).join(', ')})`,
  )
if (baseDist)
  console.log(`ratio current / baseline: ${(median(results.current) / median(results.baseline)).toFixed(3)}`)
