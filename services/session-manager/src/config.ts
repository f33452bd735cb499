import { createHash, randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { DEFAULT_MAX_FILE_BYTES } from '@care/event-log'
import { DEFAULT_SCHEMA } from './postgres/schema-names.js'
import type { SessionPolicy } from './sessions/session-lifecycle.js'
import type { SnapshotCadence } from './store/embedded-store.js'

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
  /** When the embedded store snapshots its hot state (`CARE_SNAPSHOT_EVERY_EVENTS`, `CARE_SNAPSHOT_INTERVAL`). */
  snapshots: SnapshotCadence
  /** Read rate of the background scrub of sealed log segments, bytes per second; 0 turns it off. */
  scrubBytesPerSecond: number
  logLevel: LogLevel
  store: StoreConfig
  /** Names this process in `GET /healthz` (`CARE_INSTANCE_ID`, else a random id), so a caller can tell it from another process on the same port. */
  instanceId: string
  /**
   * SHA-256 (hex) of each `CARE_REVIEWER_TOKENS` token: may sign in to the review page (`/review`) only. Kept
   * apart from `tokens`, so configuring reviewers alone does not turn on bearer authentication of the API.
   */
  reviewerTokens: ReadonlySet<string>
  /** Worker logs (event-log directories or JSONL files) merged into a session's page (`CARE_REVIEW_WORKER_LOGS`). */
  reviewWorkerLogs: readonly string[]
  /** Key of the pseudonymised export of the review page (`CARE_PSEUDONYM_KEY_FILE`); none: a random key per process. */
  pseudonymKeyFile?: string
}

/** The pino levels `LOG_LEVEL` accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * One environment variable a service reads: its name, its default as the docs show it, and what it
 * means. docs/configuration.md is checked against these tables (src/config-doc.test.ts), so the
 * documentation lists exactly the variables the code reads.
 *
 * @example
 * const port = SESSION_MANAGER_SETTINGS.find((s) => s.name === 'PORT')?.default // '7400'
 */
export interface SettingDoc {
  name: string
  default: string
  meaning: string
}

/**
 * Every variable `loadConfig` reads, in the order docs/configuration.md lists them.
 *
 * @example
 * for (const s of SESSION_MANAGER_SETTINGS) console.log(`${s.name} (default ${s.default})`)
 */
export const SESSION_MANAGER_SETTINGS: readonly SettingDoc[] = [
  { name: 'HOST', default: '127.0.0.1', meaning: 'Address to bind.' },
  { name: 'PORT', default: '7400', meaning: 'Port (0 picks a free one).' },
  {
    name: 'CARE_DATA_DIR',
    default: './.care-data/session-manager',
    meaning: 'Embedded store: event log, lock, checkpoints.',
  },
  {
    name: 'CARE_IDLE_TIMEOUT',
    default: '30m',
    meaning: 'Idle time after which a session ends (idle_timeout).',
  },
  { name: 'CARE_MAX_DURATION', default: '24h', meaning: 'Longest session (max_duration).' },
  { name: 'CARE_RETRY_WINDOW', default: '24h', meaning: 'How long a record_id is remembered for retries.' },
  {
    name: 'CARE_CALLER_TOKENS',
    default: '(none)',
    meaning: 'Bearer tokens allowed to start, touch and end.',
  },
  {
    name: 'CARE_AUDITOR_TOKENS',
    default: '(none)',
    meaning: 'Bearer tokens allowed to read sessions and exports.',
  },
  { name: 'CARE_LOG_MAX_FILE_BYTES', default: '67108864', meaning: 'Segment size before rotation.' },
  { name: 'CARE_LOG_REPAIR', default: '0', meaning: '1 cuts a corrupt log at the first bad line.' },
  {
    name: 'CARE_SCRUB_BYTES_PER_SECOND',
    default: '8388608',
    meaning: 'Embedded store: read rate of the background scrub of sealed segments (0: off).',
  },
  {
    name: 'CARE_SNAPSHOT_EVERY_EVENTS',
    default: '100000',
    meaning: 'Embedded store: snapshot the hot state after this many events (0: no snapshots).',
  },
  {
    name: 'CARE_SNAPSHOT_INTERVAL',
    default: '5m',
    meaning: 'Embedded store: snapshot at most this long after an event arrived.',
  },
  { name: 'LOG_LEVEL', default: 'info', meaning: 'pino level.' },
  { name: 'CARE_INSTANCE_ID', default: '(random)', meaning: 'Name of this process in GET /healthz.' },
  { name: 'CARE_STORE', default: 'file', meaning: 'file (embedded JSONL log) or postgres.' },
  { name: 'DATABASE_URL', default: '(none)', meaning: 'PostgreSQL URL; required with CARE_STORE=postgres.' },
  { name: 'CARE_DB_SCHEMA', default: 'care_sessions', meaning: 'PostgreSQL schema.' },
  { name: 'CARE_DB_OWNER_ROLE', default: '(none)', meaning: 'Role that owns the schema objects.' },
  { name: 'CARE_DB_POOL_SIZE', default: '10', meaning: 'Connections per instance.' },
  {
    name: 'CARE_REVIEWER_TOKENS',
    default: '(none)',
    meaning: 'Tokens that may sign in to the review page /review (auditor tokens may too).',
  },
  {
    name: 'CARE_REVIEW_WORKER_LOGS',
    default: '(none)',
    meaning: 'Comma-separated worker logs (event-log dirs or JSONL files) merged into session pages.',
  },
  {
    name: 'CARE_PSEUDONYM_KEY_FILE',
    default: '(random per process)',
    meaning: 'HMAC key file of the review page pseudonymised export.',
  },
]

/** The configuration is unusable; the message says which variable and why. The service refuses to start. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export const DEFAULT_PORT = 7400
/** Events between two snapshots of the embedded store's hot state, unless `CARE_SNAPSHOT_EVERY_EVENTS` says otherwise. */
export const DEFAULT_SNAPSHOT_EVERY_EVENTS = 100_000
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
    repair: flag(env.CARE_LOG_REPAIR, 'CARE_LOG_REPAIR') || argv.includes('--repair'),
    snapshots: snapshotCadence(env),
    scrubBytesPerSecond: integer(
      env.CARE_SCRUB_BYTES_PER_SECOND,
      8 * 1024 * 1024,
      'CARE_SCRUB_BYTES_PER_SECOND',
      0,
    ),
    logLevel: logLevel(env.LOG_LEVEL, 'LOG_LEVEL'),
    store: storeConfig(env),
    instanceId: env.CARE_INSTANCE_ID?.trim() || randomUUID(),
    reviewerTokens: reviewerTokens(env.CARE_REVIEWER_TOKENS),
    reviewWorkerLogs: (env.CARE_REVIEW_WORKER_LOGS ?? '')
      .split(',')
      .map((path) => path.trim())
      .filter((path) => path !== '')
      .map((path) => resolve(path)),
    ...(env.CARE_PSEUDONYM_KEY_FILE?.trim()
      ? { pseudonymKeyFile: resolve(env.CARE_PSEUDONYM_KEY_FILE.trim()) }
      : {}),
  }
}

function reviewerTokens(list: string | undefined): Set<string> {
  const byDigest = new Map<string, Set<Role>>()
  addTokens(byDigest, list, 'auditor', 'CARE_REVIEWER_TOKENS')
  return new Set(byDigest.keys())
}

/**
 * Checks `LOG_LEVEL` (or a worker's) against the pino levels, so a typo is one line at start
 * instead of a pino stack trace.
 *
 * @example
 * logLevel(process.env.LOG_LEVEL, 'LOG_LEVEL') // 'info' when unset
 */
export function logLevel(value: string | undefined, name: string): LogLevel {
  const level = value?.trim() || 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`${name}=${value} is not a log level (use one of ${LOG_LEVELS.join(', ')}).`)
  }
  return level as LogLevel
}

function flag(value: string | undefined, name: string): boolean {
  const text = value?.trim() ?? ''
  if (text === '' || text === '0') return false
  if (text === '1') return true
  throw new ConfigError(`${name}=${value} must be 1 (on) or 0 (off).`)
}

/**
 * Why `url` is not a usable PostgreSQL URL, or undefined when it is. Only `postgres://` and
 * `postgresql://` URLs with a host (or a `host=` socket directory) are accepted.
 *
 * @example
 * databaseUrlProblem('not-a-url') // 'not-a-url is not a URL (use postgres://user:password@host:5432/database)'
 */
export function databaseUrlProblem(url: string): string | undefined {
  const use = '(use postgres://user:password@host:5432/database)'
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `${url} is not a URL ${use}`
  }
  const shown = parsed.password ? url.replace(`:${parsed.password}@`, ':***@') : url
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    return `${shown} is not a postgres:// URL ${use}`
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) return `${shown} names no host ${use}`
  return undefined
}

function storeConfig(env: NodeJS.ProcessEnv): StoreConfig {
  const kind = env.CARE_STORE?.trim() || 'file'
  if (kind === 'file') return { kind }
  if (kind !== 'postgres') throw new ConfigError(`CARE_STORE=${kind} must be file or postgres.`)
  const url = env.DATABASE_URL?.trim()
  if (!url) throw new ConfigError('CARE_STORE=postgres needs DATABASE_URL (postgres://user@host:5432/db).')
  const problem = databaseUrlProblem(url)
  if (problem !== undefined) throw new ConfigError(`DATABASE_URL=${problem}.`)
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

/**
 * Parses a positive duration: `1500ms`, `90s`, `30m`, `24h`, `7d` or a bare number of
 * milliseconds (`1500`). Zero is refused: no timeout or window of length 0 makes sense.
 *
 * @example
 * duration(process.env.CARE_IDLE_TIMEOUT, '30m', 'CARE_IDLE_TIMEOUT') // 1_800_000 when unset
 */
export function duration(value: string | undefined, fallback: string, name: string): number {
  const text = (value?.trim() || fallback).toLowerCase()
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
  const ms = match ? Number(match[1]) * UNITS[match[2] ?? 'ms']! : Number.NaN
  const allowed = 'a positive duration such as 1500 (milliseconds), 1500ms, 90s, 30m, 24h or 7d'
  if (ms === 0) throw new ConfigError(`${name}=${value} is zero; use ${allowed}.`)
  if (!Number.isSafeInteger(ms) || ms < 0) throw new ConfigError(`${name}=${value} is not ${allowed}.`)
  return ms
}

/** Snapshots of the embedded store's hot state: every N events (0 turns them off) or T after an event. */
function snapshotCadence(env: NodeJS.ProcessEnv): SnapshotCadence {
  const everyEvents = integer(
    env.CARE_SNAPSHOT_EVERY_EVENTS,
    DEFAULT_SNAPSHOT_EVERY_EVENTS,
    'CARE_SNAPSHOT_EVERY_EVENTS',
    0,
  )
  return {
    enabled: everyEvents > 0,
    everyEvents: everyEvents > 0 ? everyEvents : DEFAULT_SNAPSHOT_EVERY_EVENTS,
    intervalMs: duration(env.CARE_SNAPSHOT_INTERVAL, '5m', 'CARE_SNAPSHOT_INTERVAL'),
  }
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
    throw new ConfigError(`${name}=${value} must be an integer from ${min} to ${max}.`)
  return n
}
