#!/usr/bin/env node
// Recovery and verification cost of the event log against the floor of merely reading the files and
// JSON.parse-ing every line. Runs against the built dist:
//   pnpm --filter @care/session-manager build && node bench/log-recovery.mjs [events=1000000] [rounds=3]
// Generates a realistic log (start/touch/end for ~0.3 sessions per event) in a temp dir, then times, in
// alternation within one process so both see the same (warm) page cache:
//   (a) read + JSON.parse every line, (b) EventLog.open recovery (full hash-chain check), (c) verifyLog.
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventLog, verifyLog } from '@care/event-log'

const EVENTS = Number(process.argv[2] ?? 1_000_000)
const ROUNDS = Number(process.argv[3] ?? 3)
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

let rng = 0x9e3779b9
function random() {
  // xorshift32: deterministic, so runs are comparable.
  rng ^= rng << 13
  rng ^= rng >>> 17
  rng ^= rng << 5
  return (rng >>> 0) / 2 ** 32
}

function ulid(time) {
  let out = ''
  for (let t = time, i = 0; i < 10; i++, t = Math.floor(t / 32)) out = CROCKFORD[t % 32] + out
  for (let i = 0; i < 16; i++) out += CROCKFORD[Math.floor(random() * 32)]
  return out
}

function* events(count) {
  const start = Date.parse('2026-03-01T08:00:00.000Z')
  const open = []
  for (let i = 0; i < count; i++) {
    const now = start + i * 37
    const timestamp = new Date(now).toISOString()
    const roll = random()
    const base = {
      schema_version: '1.1',
      record_id: ulid(now),
      timestamp,
      source: 'session_manager',
      origin: 'human',
      performer_id: `caregiver-${Math.floor(random() * 40)}`,
    }
    const left = count - i
    if (open.length === 0 || (roll < 0.3 && left > open.length)) {
      const session = { id: ulid(now), user: `user-${Math.floor(random() * 5000)}`, started: timestamp }
      open.push(session)
      yield {
        ...base,
        event: 'session.start',
        user_id: session.user,
        session_id: session.id,
        input_record_id: ulid(now),
        input_source: 'ui',
        metadata: { device: random() < 0.5 ? 'tablet' : 'kiosk' },
        idle_timeout_ms: 900000,
        max_duration_ms: 14400000,
      }
    } else if (roll < 0.6 && left > open.length) {
      const session = open[Math.floor(random() * open.length)]
      yield {
        ...base,
        event: 'session.touch',
        user_id: session.user,
        session_id: session.id,
        input_record_id: ulid(now),
        input_source: 'ui',
      }
    } else {
      const at = Math.floor(random() * open.length)
      const session = open[at]
      open[at] = open[open.length - 1]
      open.pop()
      yield {
        ...base,
        event: 'session.end',
        user_id: session.user,
        session_id: session.id,
        reason: 'explicit',
        started_at: session.started,
        ended_at: timestamp,
        input_record_id: ulid(now),
        input_source: 'ui',
      }
    }
  }
}

async function generate(dir, count) {
  const { log } = await EventLog.open({ dir })
  let batch = []
  let sessions = 0
  for (const event of events(count)) {
    if (event.event === 'session.start') sessions++
    batch.push(log.append(event))
    if (batch.length === 5000) {
      await Promise.all(batch)
      batch = []
    }
  }
  await Promise.all(batch)
  await log.close()
  return sessions
}

/** (a) The floor: read every segment in 4 MiB chunks and JSON.parse every line. */
async function readAndParse(dir) {
  const eventsDir = join(dir, 'events')
  const files = (await readdir(eventsDir)).filter((f) => f.endsWith('.jsonl')).sort()
  let lines = 0
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024)
  for (const file of files) {
    const handle = await open(join(eventsDir, file), 'r')
    let carry = 0
    let position = 0
    for (;;) {
      const { bytesRead } = await handle.read(buf, carry, buf.length - carry, position)
      if (bytesRead === 0) break
      position += bytesRead
      const filled = carry + bytesRead
      let start = 0
      let nl = buf.indexOf(10, start)
      while (nl !== -1 && nl < filled) {
        JSON.parse(buf.toString('utf8', start, nl))
        lines++
        start = nl + 1
        nl = buf.indexOf(10, start)
      }
      buf.copy(buf, 0, start, filled)
      carry = filled - start
    }
    await handle.close()
  }
  return lines
}

async function recover(dir) {
  let records = 0
  const { log, report } = await EventLog.open({ dir, onRecord: () => records++ })
  await log.close()
  if (report.records !== records) throw new Error('recovery count mismatch')
  return records
}

async function verify(dir) {
  const report = await verifyLog(dir)
  if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.problem)}`)
  return report.records
}

async function time(fn) {
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  const result = await fn()
  const used = process.cpuUsage(cpu)
  return {
    ms: Number(process.hrtime.bigint() - started) / 1e6,
    cpuMs: (used.user + used.system) / 1000,
    result,
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const dir = await mkdtemp(join(tmpdir(), 'care-log-bench-'))
try {
  const gen = await time(() => generate(dir, EVENTS))
  const files = (await readdir(join(dir, 'events'))).filter((f) => f.endsWith('.jsonl'))
  let bytes = 0
  for (const f of files) bytes += (await stat(join(dir, 'events', f))).size
  console.log(
    `generated ${EVENTS} events (${gen.result} sessions) in ${files.length} file(s), ${(bytes / 2 ** 20).toFixed(1)} MiB, ` +
      `${(bytes / EVENTS).toFixed(0)} bytes/line, in ${(gen.ms / 1000).toFixed(1)} s`,
  )
  const runs = { parse: [], recover: [], verify: [] }
  const cpu = { parse: [], recover: [], verify: [] }
  // One untimed warm-up pass so the page cache and JIT are in the same state for all three.
  await readAndParse(dir)
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of [
      ['parse', readAndParse],
      ['recover', recover],
      ['verify', verify],
    ]) {
      const { ms, cpuMs, result } = await time(() => fn(dir))
      if (result !== EVENTS) throw new Error(`${name} saw ${result} records, expected ${EVENTS}`)
      runs[name].push(ms)
      cpu[name].push(cpuMs)
    }
    const show = (name) => `${runs[name].at(-1).toFixed(0)} ms (cpu ${cpu[name].at(-1).toFixed(0)})`
    console.log(
      `round ${round + 1}: read+parse ${show('parse')}, recovery ${show('recover')}, verify ${show('verify')}`,
    )
  }
  const parse = median(runs.parse)
  const recovery = median(runs.recover)
  const verification = median(runs.verify)
  console.log(
    `median read+parse: ${parse.toFixed(0)} ms (${(bytes / 2 ** 20 / (parse / 1000)).toFixed(0)} MiB/s)`,
  )
  console.log(
    `median recovery:   ${recovery.toFixed(0)} ms  ratio recovery/read+parse = ${(recovery / parse).toFixed(2)} (target <= 2)`,
  )
  console.log(
    `median verifyLog:  ${verification.toFixed(0)} ms  throughput relative to read+parse = ${(parse / verification).toFixed(2)} (target >= 0.7)`,
  )
  // CPU time is what the ratios are about; wall time also counts other processes on a busy machine.
  const [cp, cr, cv] = [median(cpu.parse), median(cpu.recover), median(cpu.verify)]
  console.log(
    `cpu-time medians: read+parse ${cp.toFixed(0)} ms, recovery ${cr.toFixed(0)} ms (ratio ${(cr / cp).toFixed(2)}), verify ${cv.toFixed(0)} ms (throughput ${(cp / cv).toFixed(2)})`,
  )
} finally {
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true })
  else console.log(dir)
}
