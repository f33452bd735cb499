import pg from 'pg'
import { unavailable } from './pg-errors.js'

/** How to reach the database (`DATABASE_URL` and friends). */
export interface PostgresConnectionOptions {
  /** `postgres://user@host:port/db`. */
  url: string
  /** Connections in this instance's pool (default 10). */
  poolSize?: number
  /** Give up connecting after this long and answer 503 (default 2000 ms). */
  connectTimeoutMs?: number
}

/**
 * The server refuses durability: `fsync` or `synchronous_commit` is off, so a commit could be
 * acknowledged and then lost. The service refuses to start (and to acknowledge) on such a server.
 *
 * @example
 * if (error instanceof UnsafeDatabaseError) process.exit(1)
 */
export class UnsafeDatabaseError extends Error {
  override readonly name = 'UnsafeDatabaseError'
}

/**
 * Opens a `pg` pool for the service: bounded connect time so an unreachable database answers 503
 * quickly, TCP keep-alive, a statement timeout, and an `error` listener so a server restart that
 * kills idle connections does not crash the process (the pool reconnects on the next query).
 *
 * @example
 * const pool = createPool({ url: process.env.DATABASE_URL! })
 */
export function createPool(
  options: PostgresConnectionOptions,
  logger?: { warn(o: object, m: string): void },
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    statement_timeout: 15_000,
    application_name: 'care-session-manager',
    // Checked on every new connection, before its first query: a server whose fsync or
    // synchronous_commit was turned off at runtime gets no write we would acknowledge.
    onConnect: (client: pg.ClientBase) => assertDurable(client),
  })
  pool.on('error', (err) => logger?.warn({ err }, 'idle database connection lost; it will be replaced'))
  return pool
}

/**
 * A small pool for one-shot tools (verify, import, export, replay). Like every pool of the service
 * it has an `error` listener: an idle connection cut by a server restart must not crash the process
 * (the pool reconnects on the next query).
 *
 * @example
 * const pool = createToolPool(process.env.DATABASE_URL!, 2)
 */
export function createToolPool(url: string | undefined, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max })
  pool.on('error', () => {})
  return pool
}

/**
 * Reads `fsync` and `synchronous_commit` as this connection sees them and throws
 * `UnsafeDatabaseError` if either is off (connection problems become `StoreUnavailableError`).
 *
 * @example
 * await assertDurable(pool)
 */
export async function assertDurable(pool: pg.Pool | pg.ClientBase): Promise<void> {
  let settings: { fsync: string; synchronous_commit: string }
  try {
    const { rows } = await pool.query<{ fsync: string; synchronous_commit: string }>(
      "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit",
    )
    settings = rows[0]!
  } catch (error) {
    // The pool's own connect hook may already have refused this server.
    throw error instanceof UnsafeDatabaseError ? error : unavailable(error)
  }
  if (settings.fsync !== 'on' || settings.synchronous_commit === 'off') {
    throw new UnsafeDatabaseError(
      `the database runs with fsync=${settings.fsync}, synchronous_commit=${settings.synchronous_commit}; ` +
        'an acknowledged commit could be lost. Turn both on (postgresql.conf, ALTER SYSTEM or ALTER ROLE/DATABASE ... SET).',
    )
  }
}

/**
 * Checks a client out of the pool for `fn` and always gives it back. While it is checked out, an
 * `error` event (the server went away between two queries) is caught instead of crashing the
 * process, and such a client is destroyed rather than returned to the pool.
 *
 * @example
 * await withClient(pool, async (client) => {
 *   await client.query('BEGIN')
 *   await client.query('COMMIT')
 * })
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  const onError = (error: Error) => {
    broken = error
  }
  client.on('error', onError)
  try {
    return await fn(client)
  } finally {
    client.off('error', onError)
    client.release(broken)
  }
}
