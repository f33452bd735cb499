#!/usr/bin/env node
// The review page's browser tests drive Debian's Chromium with playwright-core (no downloaded browser).
// This runs before `pnpm test`: it does nothing when the browser is found (CARE_CHROMIUM_PATH, else
// /usr/bin/chromium); as root with apt-get it installs Debian's package; otherwise it says what to
// install and fails.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const browser = process.env.CARE_CHROMIUM_PATH || '/usr/bin/chromium'
if (existsSync(browser)) process.exit(0)

const isRoot = process.getuid?.() === 0
const hasApt = existsSync('/usr/bin/apt-get')
if (!isRoot || !hasApt || process.env.CARE_CHROMIUM_PATH) {
  console.error(
    `Chromium was not found at ${browser}. The review page's browser tests need it: install it\n` +
      '(Debian/Ubuntu: `sudo apt-get install chromium`) or point CARE_CHROMIUM_PATH at a Chromium binary,\n' +
      'and run the tests again.',
  )
  process.exit(1)
}
console.log('installing Chromium (Debian package chromium) for the browser tests...')
const apt = (args) =>
  execFileSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
apt(['update', '-qq'])
apt(['install', '-y', '-qq', '--no-install-recommends', 'chromium'])
if (!existsSync(browser)) {
  console.error(`installed chromium, but ${browser} is still missing`)
  process.exit(1)
}
