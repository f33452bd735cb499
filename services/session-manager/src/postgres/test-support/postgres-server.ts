import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

const run = promisify(execFile)

/** A throwaway PostgreSQL server for tests: its own data dir, 127.0.0.1 and a free port, trust auth. */
export interface TestPostgres {
  port: number
  /** Superuser URL for `database` (default `postgres`). */
  url(database?: string): string
  /** Runs SQL as the superuser on `database`. */
  sql(text: string, database?: string): Promise<pg.QueryResult>
  /** Stops the server (fast shutdown; connections are cut). */
  stop(): Promise<void>
  /** Starts it again on the same port and data dir. */
  start(): Promise<void>
  /** Stops the server and deletes its directories. */
  destroy(): Promise<void>
}

/** The directory holding `postgres`, `initdb` and `pg_ctl`: PATH first, then the Debian layout. */
export function postgresBinDir(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir
  }
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0]) return join(root, versions[0], 'bin')
  }
  throw new Error('PostgreSQL server binaries (postgres, initdb) not found on PATH or in /usr/lib/postgresql')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** PostgreSQL refuses to run as root: drop to nobody when we are root. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args]
  return ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', command, ...args]]
}

/**
 * Creates and starts a PostgreSQL server (fsync and synchronous_commit on, as in production).
 *
 * @example
 * const server = await startTestPostgres()
 * await server.sql('select 1')
 * await server.destroy()
 */
export async function startTestPostgres(settings: Record<string, string> = {}): Promise<TestPostgres> {
  const bin = postgresBinDir()
  const root = await mkdtemp(join(tmpdir(), 'care-pg-'))
  const dataDir = join(root, 'data')
  const socketDir = root
  if (process.getuid?.() === 0) await chown(root, 65534, 65534)
  const [initCmd, initArgs] = asServerUser(join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ])
  await run(initCmd, initArgs, { cwd: root })
  const port = await freePort()
  let child: ChildProcess | undefined
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`

  const start = async () => {
    const args = [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      socketDir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=32MB',
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ]
    const [cmd, cmdArgs] = asServerUser(join(bin, 'postgres'), args)
    const proc = spawn(cmd, cmdArgs, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000)
    })
    child = proc
    const deadline = Date.now() + 30_000
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`postgres exited (${proc.exitCode}): ${stderr}`)
      const client = new pg.Client({ connectionString: url() })
      try {
        await client.connect()
        await client.query('select 1')
        await client.end()
        return
      } catch {
        await client.end().catch(() => {})
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${stderr}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  const stop = async () => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGINT') // fast shutdown: roll back open transactions, cut connections, checkpoint
    await exited
  }

  await start()
  return {
    port,
    url,
    async sql(text, database) {
      const client = new pg.Client({ connectionString: url(database) })
      await client.connect()
      try {
        return await client.query(text)
      } finally {
        await client.end()
      }
    },
    stop,
    start,
    async destroy() {
      await stop()
      await rm(root, { recursive: true, force: true })
    },
  }
}

let databases = 0

/**
 * A fresh database for one test, with the recommended roles: `care_owner` (NOLOGIN) owns the
 * schema, `care_service` logs in and may only `SET ROLE care_owner` for migrations. Returns the
 * service's URL.
 *
 * @example
 * const url = await createServiceDatabase(server)
 */
export async function createServiceDatabase(server: TestPostgres): Promise<string> {
  const name = `care_test_${process.pid}_${++databases}`
  await server.sql(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'care_owner') THEN
        CREATE ROLE care_owner NOLOGIN;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'care_service') THEN
        CREATE ROLE care_service LOGIN NOINHERIT IN ROLE care_owner;
      END IF;
    END $$`)
  await server.sql(`CREATE DATABASE ${name}`)
  await server.sql(`GRANT CREATE ON DATABASE ${name} TO care_owner`)
  return `postgres://care_service@127.0.0.1:${server.port}/${name}`
}

export { run as execFileAsync }

/**
 * A `pg.Pool` for a test's own queries (setup, damage, checks). It has an `'error'` listener: the test
 * server is stopped at teardown, and an idle client that then receives 57P01 ("terminating connection
 * due to administrator command") would otherwise be an uncaught exception that fails the whole run.
 *
 * @example
 * const admin = testPool(superuserUrl, 2)
 * await admin.query('SELECT 1')
 */
export function testPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max })
  pool.on('error', () => {})
  return pool
}
