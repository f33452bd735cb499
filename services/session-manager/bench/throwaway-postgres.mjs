// A throwaway PostgreSQL server for the benchmarks that need one (bench/postgres.mjs, bench/pg-tree.mjs):
// initdb into a temporary directory, production durability (fsync and synchronous_commit on), listening on
// 127.0.0.1 only, run as nobody when we are root (PostgreSQL refuses to run as root).
import { execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function postgresBin() {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir
  }
  const root = '/usr/lib/postgresql'
  const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined
  if (version) return join(root, version, 'bin')
  throw new Error('postgres/initdb not found')
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts a throwaway server; `stop()` shuts it down and deletes its directory.
 * @returns {Promise<{ url: string, pid: number, stop(): Promise<void> }>}
 */
export async function startPostgres(prefix = 'care-pg-bench-') {
  const bin = postgresBin()
  const root = mkdtempSync(join(tmpdir(), prefix))
  const asUser = (cmd, args) =>
    process.getuid() === 0
      ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', cmd, ...args]]
      : [cmd, args]
  if (process.getuid() === 0) chownSync(root, 65534, 65534)
  const data = join(root, 'data')
  const [initCmd, initArgs] = asUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
  ])
  execFileSync(initCmd, initArgs, { cwd: root, stdio: 'ignore' })
  const port = await freePort()
  const [cmd, args] = asUser(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    root,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'max_connections=200',
    '-c',
    'shared_buffers=128MB',
  ])
  const child = spawn(cmd, args, { cwd: root, stdio: 'ignore' })
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url })
    try {
      await c.connect()
      await c.end()
      break
    } catch {
      if (i > 300) throw new Error('postgres did not start')
      await sleep(50)
    }
  }
  return {
    url,
    pid: child.pid,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGINT')
      await exited
      rmSync(root, { recursive: true, force: true })
    },
  }
}
