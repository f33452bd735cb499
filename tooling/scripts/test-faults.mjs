#!/usr/bin/env node
// Runs the fault-injection, fuzzing and model-based suites of both services (docs/reliability.md).
//
//   pnpm test:faults                  CI size (the same suites `pnpm test` runs)
//   pnpm test:faults --long           the large run (CARE_FAULTS_SCALE=long): thousands of crash points,
//                                     fuzz inputs and command sequences; takes tens of minutes
//   pnpm test:faults --seed=123 [--path=0:1:2]   replay a failure fast-check reported
import { spawnSync } from 'node:child_process'

const SUITES = [
  {
    filter: '@care/session-manager',
    files: [
      'src/faults/power-loss.test.ts',
      'src/faults/io-errors.test.ts',
      'src/faults/disk-full.test.ts',
      'src/faults/recovery-crash.test.ts',
      'src/faults/session-model.test.ts',
      'src/app.fuzz.test.ts',
    ],
  },
  { filter: '@care/sample-worker', files: ['src/app.fuzz.test.ts'] },
]

const args = process.argv.slice(2)
const env = { ...process.env }
for (const arg of args) {
  if (arg === '--long') env.CARE_FAULTS_SCALE = 'long'
  else if (arg.startsWith('--seed=')) env.CARE_FAULTS_SEED = arg.slice('--seed='.length)
  else if (arg.startsWith('--path=')) env.CARE_FAULTS_PATH = arg.slice('--path='.length)
  else if (arg === '--help' || arg === '-h') {
    console.log('usage: pnpm test:faults [--long] [--seed=<n> [--path=<p>]]')
    process.exit(0)
  } else {
    console.error(`test:faults: unknown argument ${arg} (try --help)`)
    process.exit(2)
  }
}

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { stdio: 'inherit', env })
  if (result.error) throw result.error
  return result.status ?? 1
}

// The suites import workspace packages (@care/schemas, @care/session-guard) from their built dist.
const buildFilters = SUITES.flatMap(({ filter }) => ['--filter', `${filter}^...`])
if (run('pnpm', ['turbo', 'run', 'build', '--output-logs=errors-only', ...buildFilters]) !== 0)
  process.exit(1)

const started = Date.now()
let failed = 0
for (const { filter, files } of SUITES) {
  console.log(
    `\n== ${filter}: ${env.CARE_FAULTS_SCALE === 'long' ? 'long' : 'CI-size'} fault suites` +
      `${env.CARE_FAULTS_SEED ? ` (seed ${env.CARE_FAULTS_SEED})` : ''}`,
  )
  // The long run's single tests take minutes; vitest's own per-test timeouts are scaled in the tests.
  if (run('pnpm', ['--filter', filter, 'exec', 'vitest', 'run', ...files]) !== 0) failed++
}
console.log(
  `\ntest:faults: ${failed === 0 ? 'passed' : `${failed} package(s) failed`} in ${Math.round((Date.now() - started) / 1000)} s`,
)
process.exit(failed === 0 ? 0 : 1)
