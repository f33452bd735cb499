import { StoreUnavailableError } from '../store/event-store.js'

/** A PostgreSQL error as `pg` reports it. */
export interface PgError extends Error {
  code?: string
  constraint?: string
}

/**
 * True for a unique-constraint violation (SQLSTATE 23505): a concurrent writer got there first.
 *
 * @example
 * if (isUniqueViolation(err)) return retry()
 */
export function isUniqueViolation(error: unknown): error is PgError {
  return (error as PgError | undefined)?.code === '23505'
}

/**
 * Wraps whatever a query threw as a `StoreUnavailableError` (HTTP 503): connection refused or
 * cut, server shutting down, disk full, a timeout... Nothing was acknowledged, the caller retries
 * with the same `record_id`. Errors that already are refusals pass through.
 *
 * @example
 * try { await pool.query(sql) } catch (e) { throw unavailable(e) }
 */
export function unavailable(error: unknown): Error {
  if (error instanceof StoreUnavailableError) return error
  const e = error as PgError | undefined
  const code = e?.code ?? (e as NodeJS.ErrnoException | undefined)?.code ?? 'PG_UNAVAILABLE'
  return new StoreUnavailableError(`database: ${e?.message ?? String(error)}`, `PG_${code}`, { cause: error })
}
