#!/usr/bin/env node
// `pnpm start`: runs the session-manager (127.0.0.1:7400) and the sample worker (127.0.0.1:7401)
// with embedded defaults (data under ./.care-data), prefixes their JSON logs, and stops both on
// Ctrl-C / SIGTERM. Any variable already set in the environment wins over these defaults.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'

const root = resolve(import.meta.dirname, '../..')
const dataRoot = resolve(root, process.env.CARE_DATA_ROOT ?? '.care-data')
const services = [
  {
    name: 'session-manager',
    entry: 'services/session-manager/dist/main.js',
    port: process.env.SESSION_MANAGER_PORT ?? '7400',
    env: { CARE_DATA_DIR: resolve(dataRoot, 'session-manager') },
    ready: '/readyz',
  },
  {
    name: 'sample-worker',
    entry: 'services/sample-worker/dist/main.js',
    port: process.env.SAMPLE_WORKER_PORT ?? '7401',
    env: { CARE_WORKER_DATA_DIR: resolve(dataRoot, 'worker') },
    ready: '/healthz',
  },
]

let stopping = false
const children = services.map(({ name, entry, env, port }) => {
  const child = spawn(process.execPath, [resolve(root, entry)], {
    cwd: root,
    // Both services listen on 127.0.0.1 by default; HOST and the other variables pass through.
    env: { ...env, ...process.env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`))
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited (${signal ?? code}); stopping everything`)
      stop(code || 1)
    }
  })
  return child
})

function stop(exitCode = 0) {
  stopping = true
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null))).then(
    () => process.exit(exitCode),
  )
}
process.once('SIGINT', () => stop(0))
process.once('SIGTERM', () => stop(0))

// Tell the person at the terminal where things are once both answer.
const deadline = Date.now() + 60_000
for (const { name, port, ready } of services) {
  const origin = `http://127.0.0.1:${port}`
  let up = false
  while (!stopping && !up && Date.now() < deadline) {
    up = await fetch(`${origin}${ready}`).then(
      (r) => r.ok,
      () => false,
    )
    if (!up) await new Promise((r) => setTimeout(r, 200))
  }
  if (stopping) break
  if (!up) {
    console.error(`[start] ${name} did not answer ${origin}${ready} within 60 s; stopping everything`)
    stop(1)
    break
  }
  console.log(`[start] ${name} is up: ${origin}`)
}
if (!stopping) {
  console.log(`[start] data in ${dataRoot}. Try: pnpm demo   (Ctrl-C stops both services)`)
}
