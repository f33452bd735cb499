import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'

/**
 * Observability settings shared by the CARE services, read from the environment
 * (`CARE_SHUTDOWN_GRACE`, `CARE_ACCESS_LOG_SAMPLE`, `CARE_METRICS_PORT`, `CARE_METRICS_HOST`,
 * `CARE_METRICS_TOKENS`; tracing reads the standard `OTEL_*` variables itself).
 *
 * @example
 * const config = loadObservabilityConfig({ CARE_METRICS_PORT: '9464' })
 */
export interface ObservabilityConfig {
  /** How long in-flight requests may take to finish after SIGTERM/SIGINT (default 10 s). */
  shutdownGraceMs: number
  /** Fraction (0..1) of non-5xx requests that get an access-log line (default 1). */
  accessLogSample: number
  /** Where `/metrics` is served: its own listener, or the service port behind a token. */
  metrics: MetricsExposure
}

/**
 * `separate`: `/metrics` on `host:port` (no token: keep that port off the public network) and not on
 * the service port. `service-port`: `/metrics` on the service port; a bearer token from
 * `CARE_METRICS_TOKENS` is required, except on a loopback-only service with no metrics tokens.
 *
 * @example
 * const exposure: MetricsExposure = { kind: 'separate', host: '127.0.0.1', port: 9464 }
 */
export type MetricsExposure =
  | { kind: 'separate'; host: string; port: number }
  | { kind: 'service-port'; tokenDigests: ReadonlySet<string> }

/** An observability variable is unusable; the message names it. */
export class ObservabilityConfigError extends Error {
  override readonly name = 'ObservabilityConfigError'
}

const MIN_TOKEN_LENGTH = 16

/**
 * Reads {@link ObservabilityConfig} from the environment; throws {@link ObservabilityConfigError}.
 *
 * @example
 * const { shutdownGraceMs } = loadObservabilityConfig(process.env)
 */
export function loadObservabilityConfig(env: NodeJS.ProcessEnv = process.env): ObservabilityConfig {
  const sample = env.CARE_ACCESS_LOG_SAMPLE?.trim() || '1'
  const accessLogSample = Number(sample)
  if (!/^\d*\.?\d+$/.test(sample) || accessLogSample > 1) {
    throw new ObservabilityConfigError(`CARE_ACCESS_LOG_SAMPLE=${sample} must be a number in [0, 1].`)
  }
  const port = env.CARE_METRICS_PORT?.trim()
  let metrics: MetricsExposure
  if (port) {
    const n = Number(port)
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new ObservabilityConfigError(`CARE_METRICS_PORT=${port} must be an integer in [0, 65535].`)
    metrics = { kind: 'separate', host: env.CARE_METRICS_HOST?.trim() || '127.0.0.1', port: n }
  } else {
    const tokenDigests = new Set<string>()
    for (const token of (env.CARE_METRICS_TOKENS ?? '').split(',').map((t) => t.trim())) {
      if (token === '') continue
      if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
        throw new ObservabilityConfigError(
          `CARE_METRICS_TOKENS: every token must be at least ${MIN_TOKEN_LENGTH} characters without spaces.`,
        )
      tokenDigests.add(digest(token).toString('hex'))
    }
    metrics = { kind: 'service-port', tokenDigests }
  }
  return {
    shutdownGraceMs: graceFrom(env.CARE_SHUTDOWN_GRACE),
    accessLogSample,
    metrics,
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 }

function graceFrom(value: string | undefined): number {
  const text = value?.trim().toLowerCase() || '10s'
  const match = /^(\d+)(ms|s|m)?$/.exec(text)
  const ms = match ? Number(match[1]) * UNITS[match[2] ?? 'ms']! : Number.NaN
  if (!Number.isSafeInteger(ms) || ms > 3_600_000)
    throw new ObservabilityConfigError(`CARE_SHUTDOWN_GRACE=${value} is not a duration (e.g. 10s, 1500ms).`)
  return ms
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

/**
 * Whether a request may read `/metrics` on the service port: with metrics tokens configured it needs
 * `Authorization: Bearer <one of them>`; without any, only a loopback-bound service answers.
 *
 * @example
 * if (!metricsAccessAllowed(config.metrics, 'Bearer s3cret-metrics-token', '127.0.0.1')) return c.json(..., 401)
 */
export function metricsAccessAllowed(
  exposure: MetricsExposure,
  authorization: string | null | undefined,
  serviceHost: string,
): boolean {
  if (exposure.kind === 'separate') return false
  if (exposure.tokenDigests.size === 0) return isLoopback(serviceHost)
  const match = /^Bearer (\S+)$/.exec(authorization ?? '')
  if (!match) return false
  const given = digest(match[1]!)
  for (const allowed of exposure.tokenDigests) {
    if (timingSafeEqual(Buffer.from(allowed, 'hex'), given)) return true
  }
  return false
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}
