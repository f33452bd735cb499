#!/usr/bin/env node
// `pnpm demo`: plays one short interaction against the services `pnpm start` runs (a session is
// started, a few messages go through the sample worker, which calls its downstream step with the same
// session_id, the session is touched and ended) and prints the merged timeline of that session from
// the session log and the worker log. Same defaults as start.mjs; the environment wins.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { readRunningSystem, ROOT as root, runningFilePath } from './running-file.mjs'

// The settings of the system `pnpm start` is running (recorded in its running file); a variable set
// here wins, and without a running file the defaults of start.mjs apply.
const env = process.env
const running = readRunningSystem(env)
const dataRoot = resolve(root, env.CARE_DATA_ROOT ?? running?.data_root ?? '.care-data')
const sessionManagerUrl = env.SESSION_MANAGER_PORT
  ? `http://127.0.0.1:${env.SESSION_MANAGER_PORT}`
  : (running?.session_manager.url ?? 'http://127.0.0.1:7400')
const workerUrl = env.SAMPLE_WORKER_PORT
  ? `http://127.0.0.1:${env.SAMPLE_WORKER_PORT}`
  : (running?.sample_worker.url ?? 'http://127.0.0.1:7401')
const dataDir = resolve(
  root,
  env.CARE_DATA_DIR ??
    (env.CARE_DATA_ROOT ? undefined : running?.session_manager.data_dir) ??
    resolve(dataRoot, 'session-manager'),
)
const workerLog = resolve(
  root,
  env.CARE_WORKER_DATA_DIR ??
    (env.CARE_DATA_ROOT ? undefined : running?.sample_worker.data_dir) ??
    resolve(dataRoot, 'worker'),
)
const callerToken = process.env.CARE_CALLER_TOKENS?.split(',')[0]?.trim() || undefined
const dist = resolve(root, 'services/session-manager/dist/cli')

function fail(message) {
  console.error(`\n[demo] ${message}\n`)
  process.exit(1)
}

/** A hint for a 401/403: the services were started with tokens the demo was not given. */
function authHint(message) {
  if (!/\b(401|403)\b|unauthori[sz]ed|forbidden/i.test(message)) return ''
  return callerToken
    ? '\n       The session-manager refused the caller token the demo sent (the first of CARE_CALLER_TOKENS):' +
        '\n       run `pnpm demo` with the same CARE_CALLER_TOKENS as the session-manager was started with.'
    : '\n       The session-manager requires a bearer token (it was started with CARE_CALLER_TOKENS).' +
        '\n       Run the demo with the same tokens: CARE_CALLER_TOKENS=<token> pnpm demo (it sends the first one).'
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

if (running) console.log(`[demo] using the system recorded by pnpm start in ${runningFilePath(env)}`)
if (!existsSync(resolve(dataDir, 'events'))) {
  fail(
    `The session log is not in ${dataDir}. Run the demo with the same CARE_DATA_ROOT (or CARE_DATA_DIR) as \`pnpm start\`.`,
  )
}
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
  if (err instanceof SampleFlowError)
    fail(`The ${err.step} step failed: ${err.message}${authHint(err.message)}`)
  throw err
}

console.log(`\n[demo] the whole interaction window, read back from the session log and the worker log:\n`)
console.log(`  $ pnpm care-sessions timeline ${sessionId} --data-dir ${dataDir} --with ${workerLog}\n`)
const code = await main(['timeline', sessionId, '--data-dir', dataDir, '--with', workerLog])
if (code !== 0) process.exit(code)
console.log(`
[demo] try next, from the repository root:
  pnpm care-sessions verify ${dataDir}
  pnpm care-sessions replay ${sessionId} --data-dir ${dataDir}
  pnpm care-sessions export --data-dir ${dataDir} --session-id ${sessionId} --out /tmp/session.jsonl
  curl -s '${sessionManagerUrl}/export?session_id=${sessionId}'`)
