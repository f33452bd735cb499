#!/usr/bin/env node
// `pnpm demo`: plays one short interaction against the services `pnpm start` runs (a session is
// started, a few messages go through the sample worker, which calls its downstream step with the same
// session_id, the session is touched and ended) and prints the merged timeline of that session from
// the session log and the worker log. Same defaults as start.mjs; the environment wins.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = resolve(import.meta.dirname, '../..')
const dataRoot = resolve(root, process.env.CARE_DATA_ROOT ?? '.care-data')
const sessionManagerUrl = `http://127.0.0.1:${process.env.SESSION_MANAGER_PORT ?? '7400'}`
const workerUrl = `http://127.0.0.1:${process.env.SAMPLE_WORKER_PORT ?? '7401'}`
const dataDir = resolve(process.env.CARE_DATA_DIR ?? resolve(dataRoot, 'session-manager'))
const workerLog = resolve(process.env.CARE_WORKER_DATA_DIR ?? resolve(dataRoot, 'worker'))
const callerToken = process.env.CARE_CALLER_TOKENS?.split(',')[0]?.trim() || undefined
const dist = resolve(root, 'services/session-manager/dist/cli')

function fail(message) {
  console.error(`\n[demo] ${message}\n`)
  process.exit(1)
}

if (!existsSync(resolve(dist, 'sample-flow.js'))) {
  fail('The session-manager is not built yet. Run `pnpm start` (it builds everything) and then `pnpm demo`.')
}

async function up(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    return res.ok
  } catch {
    return false
  }
}
const [managerUp, workerUp] = await Promise.all([
  up(`${sessionManagerUrl}/readyz`),
  up(`${workerUrl}/healthz`),
])
if (!managerUp || !workerUp) {
  const down = [
    !managerUp && `session-manager (${sessionManagerUrl})`,
    !workerUp && `sample worker (${workerUrl})`,
  ]
    .filter(Boolean)
    .join(' and ')
  fail(
    `The ${down} ${managerUp || workerUp ? 'is' : 'are'} not answering.\n       Start the system in another terminal with \`pnpm start\`, wait for "is up", then run \`pnpm demo\` again.`,
  )
}

const { playSampleFlow, SampleFlowError } = await import(pathToFileURL(resolve(dist, 'sample-flow.js')).href)
const { main } = await import(pathToFileURL(resolve(dist, 'cli.js')).href)

console.log(
  `[demo] a caregiver opens the tablet app: session-manager ${sessionManagerUrl}, worker ${workerUrl}\n`,
)
let sessionId
try {
  ;({ sessionId } = await playSampleFlow({
    sessionManagerUrl,
    workerUrl,
    callerToken,
    onStep: (step) => console.log(`  - ${step}`),
  }))
} catch (err) {
  if (err instanceof SampleFlowError) fail(`The ${err.step} step failed: ${err.message}`)
  throw err
}

console.log(`\n[demo] the whole interaction window, read back from the session log and the worker log:\n`)
console.log(`  $ care-sessions timeline ${sessionId} --data-dir ${dataDir} --with ${workerLog}\n`)
const code = await main(['timeline', sessionId, '--data-dir', dataDir, '--with', workerLog])
if (code !== 0) process.exit(code)
console.log(`
[demo] try next (node services/session-manager/dist/cli/main.js = care-sessions):
  care-sessions verify ${dataDir}
  care-sessions replay ${sessionId} --data-dir ${dataDir}
  care-sessions export --data-dir ${dataDir} --session-id ${sessionId} --out /tmp/session.jsonl
  curl -s '${sessionManagerUrl}/export?session_id=${sessionId}'`)
