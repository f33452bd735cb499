import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'

/**
 * One environment variable the worker reads, with its documented default and meaning.
 * docs/configuration.md is checked against {@link SAMPLE_WORKER_SETTINGS} by a test.
 *
 * @example
 * const setting: WorkerSettingDoc = { name: 'PORT', default: '7401', meaning: 'Port.' }
 */
export interface WorkerSettingDoc {
  name: string
  default: string
  meaning: string
}

/**
 * Every variable {@link loadWorkerConfig} reads, in the order docs/configuration.md lists them.
 *
 * @example
 * SAMPLE_WORKER_SETTINGS.map((s) => s.name) // ['HOST', 'PORT', ...]
 */
export const SAMPLE_WORKER_SETTINGS: readonly WorkerSettingDoc[] = [
  { name: 'HOST', default: '127.0.0.1', meaning: 'Address to bind.' },
  { name: 'PORT', default: '7401', meaning: 'Port (0 picks a free one).' },
  {
    name: 'CARE_WORKER_DATA_DIR',
    default: './.care-data/worker',
    meaning:
      "Data directory of its event log (@care/event-log: chained, fdatasync'd session-tagged records).",
  },
  { name: 'DOWNSTREAM_URL', default: '(its own /steps/annotate)', meaning: 'The downstream step.' },
  { name: 'LOG_LEVEL', default: 'info', meaning: 'pino level.' },
  { name: 'CARE_INSTANCE_ID', default: '(random)', meaning: 'Name of this process in GET /healthz.' },
  { name: 'SESSION_MANAGER_URL', default: '(none)', meaning: 'Turns on the verify hook.' },
  { name: 'SESSION_MANAGER_TOKEN', default: '(none)', meaning: 'Auditor token for the verify hook.' },
]

/**
 * The worker's settings, read and checked once at start.
 *
 * @example
 * const config: WorkerConfig = loadWorkerConfig({ PORT: '0' })
 */
export interface WorkerConfig {
  host: string
  port: number
  dataDir: string
  /** Undefined: the worker's own `/steps/annotate`. */
  downstreamUrl?: string
  logLevel: string
  instanceId: string
  /** When set, the guard's `verify` hook asks this session-manager whether a session exists and is open. */
  sessionManager?: { url: string; token?: string }
}

/** The pino levels `LOG_LEVEL` accepts. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** A setting is unusable: the message names the variable, the value and what is allowed. */
export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError'
}

/**
 * Reads the worker's configuration from the environment; every setting has a default.
 * Throws {@link WorkerConfigError} with one line per mistake (the first one found).
 *
 * @example
 * const config = loadWorkerConfig(process.env)
 */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const sessionManagerUrl = httpUrl(env.SESSION_MANAGER_URL, 'SESSION_MANAGER_URL')
  const token = env.SESSION_MANAGER_TOKEN?.trim() || undefined
  if (token && !sessionManagerUrl) {
    throw new WorkerConfigError(
      'SESSION_MANAGER_TOKEN is set but SESSION_MANAGER_URL is not; set both or neither.',
    )
  }
  const downstreamUrl = httpUrl(env.DOWNSTREAM_URL, 'DOWNSTREAM_URL')
  return {
    host: env.HOST?.trim() || '127.0.0.1',
    port: port(env.PORT, 'PORT'),
    dataDir: resolve(env.CARE_WORKER_DATA_DIR?.trim() || '.care-data/worker'),
    ...(downstreamUrl ? { downstreamUrl } : {}),
    logLevel: logLevel(env.LOG_LEVEL, 'LOG_LEVEL'),
    instanceId: env.CARE_INSTANCE_ID?.trim() || randomUUID(),
    ...(sessionManagerUrl
      ? { sessionManager: { url: sessionManagerUrl.replace(/\/+$/, ''), ...(token ? { token } : {}) } }
      : {}),
  }
}

function port(value: string | undefined, name: string): number {
  if (value === undefined || value.trim() === '') return 7401
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw new WorkerConfigError(
      `${name}=${value} must be a port number from 0 to 65535 (0 picks a free one).`,
    )
  }
  return n
}

function httpUrl(value: string | undefined, name: string): string | undefined {
  const text = value?.trim()
  if (!text) return undefined
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new WorkerConfigError(
      `${name}=${value} is not a URL (use e.g. http://127.0.0.1:7401/steps/annotate).`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WorkerConfigError(`${name}=${value} must be an http:// or https:// URL.`)
  }
  return text
}

function logLevel(value: string | undefined, name: string): string {
  const level = value?.trim() || 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new WorkerConfigError(`${name}=${value} is not a log level (use one of ${LOG_LEVELS.join(', ')}).`)
  }
  return level
}
