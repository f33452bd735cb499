#!/usr/bin/env node
// The PostgreSQL tests start their own server (never a mock), so they need the server binaries.
// This runs before `pnpm test`: it does nothing when `postgres` and `initdb` are found (on PATH or
// in Debian's /usr/lib/postgresql/<version>/bin); as root with apt-get it installs Debian's
// package; otherwise it says what to install and fails.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'

function findServerBinaries() {
  const dirs = (process.env.PATH ?? '').split(delimiter)
  const debian = '/usr/lib/postgresql'
  if (existsSync(debian)) {
    for (const version of readdirSync(debian).sort().reverse()) dirs.push(join(debian, version, 'bin'))
  }
  return dirs.find((dir) => existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb')))
}

const found = findServerBinaries()
if (found) process.exit(0)

const isRoot = process.getuid?.() === 0
const hasApt = existsSync('/usr/bin/apt-get')
if (!isRoot || !hasApt) {
  console.error(
    'PostgreSQL server binaries (postgres, initdb) were not found. The PostgreSQL tests start their own\n' +
      'server and need them: install PostgreSQL (Debian/Ubuntu: `sudo apt-get install postgresql`,\n' +
      'macOS: `brew install postgresql`) and run the tests again.',
  )
  process.exit(1)
}
console.log('installing PostgreSQL server binaries (Debian package postgresql) for the tests...')
const apt = (args) =>
  execFileSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
apt(['update', '-qq'])
apt(['install', '-y', '-qq', '--no-install-recommends', 'postgresql'])
if (!findServerBinaries()) {
  console.error('installed postgresql, but still no postgres/initdb binaries found')
  process.exit(1)
}
