import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { DEFAULT_MAX_FILE_BYTES } from './log/index.js'
import { DEFAULT_SCHEMA } from './postgres/schema-names.js'
import type { SessionPolicy } from './sessions/session-lifecycle.js'

/**
 * Where events are kept: the embedded JSONL log (default, one process) or PostgreSQL (`CARE_STORE=postgres`,
 * `DATABASE_URL`), which several instances can share.
 */
export type StoreConfig =
  | { kind: 'file' }
  | { kind: 'postgres'; url: string; schema: string; ownerRole?: string; poolSize: number }

/** Who may do what. A token may carry both roles. */
export type Role = 'caller' | 'auditor'

export interface SessionManagerConfig {
  host: string
  port: number
  /** Where the event log, its lock and its checkpoints live (`CARE_DATA_DIR`). */
  dataDir: string
  policy: SessionPolicy
  /** SHA-256 (hex) of each accepted bearer token, to its roles. Empty: no authentication (loopback only). */
  tokens: ReadonlyMap<string, ReadonlySet<Role>>
  bodyLimitBytes: number
  maxLogFileBytes: number
  /** Cut off a corrupt log instead of refusing to start (`CARE_LOG_REPAIR=1` or `--repair`). */
  repair: boolean
  logLevel: string
  store: StoreConfig
}

/** The configuration is unusable; the message says which variable and why. The service refuses to start. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export const DEFAULT_PORT = 7400
export const DEFAULT_DATA_DIR = '.care-data/session-manager'
const MIN_TOKEN_LENGTH = 16

/**
 * Reads the service configuration from the environment. Every setting has an embedded
 * default, so an empty environment gives a working loopback-only service.
 *
 * @example
 * const config = loadConfig({ PORT: '0', CARE_DATA_DIR: '/var/lib/care', CARE_IDLE_TIMEOUT: '15m' })
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
): SessionManagerConfig {
  const host = env.HOST?.trim() || '127.0.0.1'
  const tokens = new Map<string, Set<Role>>()
  addTokens(tokens, env.CARE_CALLER_TOKENS, 'caller', 'CARE_CALLER_TOKENS')
  addTokens(tokens, env.CARE_AUDITOR_TOKENS, 'auditor', 'CARE_AUDITOR_TOKENS')
  if (tokens.size === 0 && !isLoopback(host)) {
    throw new ConfigError(
      `HOST=${host} is not a loopback address and no tokens are configured. Set CARE_CALLER_TOKENS and CARE_AUDITOR_TOKENS, or bind to 127.0.0.1.`,
    )
  }
  const policy: SessionPolicy = {
    idleTimeoutMs: duration(env.CARE_IDLE_TIMEOUT, '30m', 'CARE_IDLE_TIMEOUT'),
    maxDurationMs: duration(env.CARE_MAX_DURATION, '24h', 'CARE_MAX_DURATION'),
    retryWindowMs: duration(env.CARE_RETRY_WINDOW, '24h', 'CARE_RETRY_WINDOW'),
  }
  return {
    host,
    port: integer(env.PORT, DEFAULT_PORT, 'PORT', 0, 65535),
    dataDir: resolve(env.CARE_DATA_DIR?.trim() || DEFAULT_DATA_DIR),
    policy,
    tokens,
    bodyLimitBytes: 16 * 1024,
    maxLogFileBytes: integer(
      env.CARE_LOG_MAX_FILE_BYTES,
      DEFAULT_MAX_FILE_BYTES,
      'CARE_LOG_MAX_FILE_BYTES',
      4096,
    ),
    repair: env.CARE_LOG_REPAIR === '1' || argv.includes('--repair'),
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    store: storeConfig(env),
  }
}

function storeConfig(env: NodeJS.ProcessEnv): StoreConfig {
  const kind = env.CARE_STORE?.trim() || 'file'
  if (kind === 'file') return { kind }
  if (kind !== 'postgres') throw new ConfigError(`CARE_STORE=${kind} must be file or postgres.`)
  const url = env.DATABASE_URL?.trim()
  if (!url) throw new ConfigError('CARE_STORE=postgres needs DATABASE_URL (postgres://user@host:5432/db).')
  const ownerRole = env.CARE_DB_OWNER_ROLE?.trim()
  return {
    kind,
    url,
    schema: env.CARE_DB_SCHEMA?.trim() || DEFAULT_SCHEMA,
    ...(ownerRole ? { ownerRole } : {}),
    poolSize: integer(env.CARE_DB_POOL_SIZE, 10, 'CARE_DB_POOL_SIZE', 1, 1000),
  }
}

/** Hashes a bearer token the way `tokens` stores it. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

function addTokens(into: Map<string, Set<Role>>, list: string | undefined, role: Role, name: string): void {
  for (const token of (list ?? '').split(',').map((t) => t.trim())) {
    if (token === '') continue
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw new ConfigError(
        `${name}: every token must be at least ${MIN_TOKEN_LENGTH} characters without spaces.`,
      )
    }
    const digest = tokenDigest(token)
    const roles = into.get(digest) ?? new Set<Role>()
    roles.add(role)
    into.set(digest, roles)
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `1500ms`, `90s`, `30m`, `24h`, `7d` or a bare number of milliseconds. */
export function duration(value: string | undefined, fallback: string, name: string): number {
  const text = (value?.trim() || fallback).toLowerCase()
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
  const ms = match ? Number(match[1]) * UNITS[match[2] ?? 'ms']! : Number.NaN
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new ConfigError(`${name}=${value} is not a duration (use e.g. 1500ms, 90s, 30m, 24h, 7d).`)
  }
  return ms
}

function integer(
  value: string | undefined,
  fallback: number,
  name: string,
  min: number,
  max = 2 ** 53 - 1,
): number {
  if (value === undefined || value.trim() === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name}=${value} must be an integer in [${min}, ${max}].`)
  return n
}
