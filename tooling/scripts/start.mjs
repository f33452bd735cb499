#!/usr/bin/env node
// `pnpm start`: runs the session-manager (127.0.0.1:7400) and the sample worker (127.0.0.1:7401)
// with embedded defaults (data under ./.care-data), prefixes their JSON logs, and stops both on
// Ctrl-C / SIGTERM. Any variable already set in the environment wins over these defaults.
//
// Its own settings: SESSION_MANAGER_PORT, SAMPLE_WORKER_PORT, CARE_DATA_ROOT, CARE_RUNNING_FILE
// (see docs/configuration.md). Once both services answer, it records them in the running file
// (running-file.mjs), which `pnpm demo` reads, and removes it when it stops.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT as root, runningFilePath } from './running-file.mjs'

const env = process.env
const dataRoot = resolve(root, env.CARE_DATA_ROOT?.trim() || '.care-data')
const runningFile = runningFilePath(env)
// Both services bind HOST (default 127.0.0.1); a wildcard bind is reached through loopback.
const host = env.HOST?.trim() || '127.0.0.1'
const reachHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
const urlHost = reachHost.includes(':') ? `[${reachHost}]` : reachHost

function fail(message) {
  console.error(`[start] ${message}`)
  process.exit(1)
}

function portSetting(name, fallback) {
  const value = env[name]?.trim() || fallback
  const port = Number(value)
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    fail(`${name}=${value} must be a port number from 1 to 65535.`)
  }
  return port
}

/**
 * The development reviewer token `pnpm start` gives the session-manager (docs/review.md): loopback only, for
 * trying the review page. CARE_REVIEWER_TOKENS in the environment replaces it (and is then not printed).
 */
const DEV_REVIEWER_TOKEN = 'care-dev-reviewer-token'
const workerDataDir = env.CARE_WORKER_DATA_DIR?.trim()
  ? resolve(root, env.CARE_WORKER_DATA_DIR)
  : resolve(dataRoot, 'worker')

const services = [
  {
    name: 'session-manager',
    entry: 'services/session-manager/dist/main.js',
    setting: 'SESSION_MANAGER_PORT',
    port: portSetting('SESSION_MANAGER_PORT', '7400'),
    env: {
      CARE_DATA_DIR: resolve(dataRoot, 'session-manager'),
      CARE_REVIEWER_TOKENS: DEV_REVIEWER_TOKEN,
      // The review page merges the sample worker's records into each session's timeline.
      CARE_REVIEW_WORKER_LOGS: workerDataDir,
    },
    ready: '/readyz',
  },
  {
    name: 'sample-worker',
    entry: 'services/sample-worker/dist/main.js',
    setting: 'SAMPLE_WORKER_PORT',
    port: portSetting('SAMPLE_WORKER_PORT', '7401'),
    env: { CARE_WORKER_DATA_DIR: resolve(dataRoot, 'worker') },
    ready: '/healthz',
  },
].map((service) => ({ ...service, instanceId: randomUUID(), origin: `http://${urlHost}:${service.port}` }))

if (services[0].port === services[1].port) {
  fail(`SESSION_MANAGER_PORT and SAMPLE_WORKER_PORT are both ${services[0].port}; give them different ports.`)
}

/** Undefined when `port` can be bound on `host` now, else the error code (EADDRINUSE, EACCES...). */
function portProblem(port) {
  return new Promise((done) => {
    const probe = createServer()
    probe.once('error', (err) => done(err.code ?? err.message))
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => done(undefined)))
  })
}

// A taken port is one clear line, before anything starts (the services would also refuse it).
for (const { name, port, setting } of services) {
  const problem = await portProblem(port)
  if (problem === 'EADDRINUSE') {
    fail(
      `port ${port} on ${host} is already in use by another process, so the ${name} cannot listen there. ` +
        `Stop that process or choose another port: ${setting}=<port> pnpm start`,
    )
  }
  if (problem)
    fail(
      `cannot listen on ${host}:${port} for the ${name} (${problem}); choose another port with ${setting}.`,
    )
}

let stopping = false
const children = services.map((service) => {
  const { name, entry, port, instanceId } = service
  const child = spawn(process.execPath, [resolve(root, entry)], {
    cwd: root,
    // HOST and the other variables pass through; the port and the instance id are this script's.
    env: { ...service.env, ...env, PORT: String(port), CARE_INSTANCE_ID: instanceId },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Their own process group: Ctrl-C reaches only this script, which stops them in order.
    detached: true,
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`))
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[start] the ${name} exited (${signal ?? `code ${code}`}); stopping everything`)
      stop(1)
    }
  })
  return child
})

function stop(exitCode = 0) {
  if (stopping) return
  stopping = true
  rmSync(runningFile, { force: true })
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  const exited = children.map((c) =>
    c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null,
  )
  Promise.all(exited).then(() => {
    if (exitCode === 0) console.log('[start] stopped')
    process.exit(exitCode)
  })
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))
process.on('SIGHUP', () => stop(0))

/** Our own instance answers /healthz with the id we gave it; anything else is someone else's process. */
async function whoAnswers(origin) {
  try {
    const res = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000) })
    const body = await res.json()
    return body?.instance_id
  } catch {
    return undefined
  }
}

async function answers(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

// Tell the person at the terminal where things are once both answer.
const deadline = Date.now() + 60_000
for (const { name, origin, ready, instanceId, setting } of services) {
  let up = false
  while (!stopping && !up && Date.now() < deadline) {
    const instance = await whoAnswers(origin)
    if (instance !== undefined && instance !== instanceId) {
      console.error(
        `[start] ${origin} is answered by another process, not the ${name} this command started; choose another port with ${setting}.`,
      )
      stop(1)
      break
    }
    up = instance === instanceId && (await answers(`${origin}${ready}`))
    if (!up) await new Promise((r) => setTimeout(r, 200))
  }
  if (stopping) break
  if (!up) {
    console.error(`[start] the ${name} did not answer ${origin}${ready} within 60 s; stopping everything`)
    stop(1)
    break
  }
  console.log(`[start] ${name} is up: ${origin}`)
}
if (!stopping) {
  const [manager, worker] = services
  const running = {
    pid: process.pid,
    started_at: new Date().toISOString(),
    data_root: dataRoot,
    session_manager: {
      url: manager.origin,
      port: manager.port,
      pid: children[0].pid,
      instance_id: manager.instanceId,
      data_dir: env.CARE_DATA_DIR?.trim() ? resolve(root, env.CARE_DATA_DIR) : manager.env.CARE_DATA_DIR,
    },
    sample_worker: {
      url: worker.origin,
      port: worker.port,
      pid: children[1].pid,
      instance_id: worker.instanceId,
      data_dir: workerDataDir,
    },
  }
  writeFileSync(runningFile, `${JSON.stringify(running, null, 2)}\n`)
  console.log(`[start] data in ${dataRoot}; settings recorded in ${runningFile}`)
  const reviewToken = env.CARE_REVIEWER_TOKENS?.trim()
    ? '(a token of CARE_REVIEWER_TOKENS)'
    : `the development reviewer token ${DEV_REVIEWER_TOKEN}`
  console.log(`[start] Review sessions: ${manager.origin}/review  (sign in with ${reviewToken})`)
  console.log('[start] Try: pnpm demo   (Ctrl-C stops both services)')
}
