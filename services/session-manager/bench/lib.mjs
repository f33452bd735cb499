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
