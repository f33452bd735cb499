#!/usr/bin/env node
// The alerting rules in docs/alerts/ are checked with `promtool check rules` in the test run
// (packages/observability/src/alert-rules.test.ts). This runs before `pnpm test`: it does nothing
// when `promtool` is on PATH; as root with apt-get it installs Debian's `prometheus` package (which
// ships promtool); otherwise it says what to install and fails.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const findPromtool = () =>
  (process.env.PATH ?? '').split(delimiter).find((dir) => dir && existsSync(join(dir, 'promtool')))

if (findPromtool()) process.exit(0)

const isRoot = process.getuid?.() === 0
const hasApt = existsSync('/usr/bin/apt-get')
if (!isRoot || !hasApt) {
  console.error(
    'promtool was not found. The tests check docs/alerts/care-alerts.rules.yml with `promtool check rules`:\n' +
      'install Prometheus (Debian/Ubuntu: `sudo apt-get install prometheus`, macOS: `brew install prometheus`)\n' +
      'and run the tests again.',
  )
  process.exit(1)
}
console.log('installing promtool (Debian package prometheus) for the tests...')
const apt = (args) =>
  execFileSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
apt(['update', '-qq'])
apt(['install', '-y', '-qq', '--no-install-recommends', 'prometheus'])
if (!findPromtool()) {
  console.error('installed prometheus, but still no promtool on PATH')
  process.exit(1)
}
