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
    env: { PORT: '7400', CARE_DATA_DIR: resolve(dataRoot, 'session-manager') },
    ready: 'http://127.0.0.1:7400/readyz',
  },
  {
    name: 'sample-worker',
    entry: 'services/sample-worker/dist/main.js',
    env: { PORT: '7401', CARE_WORKER_LOG: resolve(dataRoot, 'worker/events.jsonl') },
    ready: 'http://127.0.0.1:7401/healthz',
  },
]

let stopping = false
const children = services.map(({ name, entry, env }) => {
  const child = spawn(process.execPath, [resolve(root, entry)], {
    cwd: root,
    env: {
      ...env,
      ...process.env,
      PORT: process.env[`${name.toUpperCase().replace('-', '_')}_PORT`] ?? env.PORT,
    },
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
for (const { name, ready } of services) {
  while (!stopping && Date.now() < deadline) {
    const ok = await fetch(ready).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 200))
  }
  if (!stopping) console.log(`[start] ${name} is up: ${new URL(ready).origin}`)
}
if (!stopping) {
  console.log(`[start] data in ${dataRoot}. Try: pnpm demo   (Ctrl-C stops both services)`)
}
