import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** Seconds: from 1 ms to 10 s, for request latency. */
const REQUEST_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * The HTTP metrics every CARE service exposes, in one Prometheus registry that also carries
 * Node's process and event-loop-lag defaults. Labels are bounded by construction: the route is the
 * route *template* (`/sessions/:session_id`, never an id), status and method are HTTP's, and the
 * 503 cause is an error code. Services register their own metrics on `registry`.
 *
 * @example
 * const metrics = createServiceMetrics({ service: 'session-manager' })
 * metrics.observeRequest({ method: 'POST', route: '/sessions.start', status: 201, seconds: 0.004 })
 * res.end(await metrics.registry.metrics())
 */
export interface ServiceMetrics {
  readonly registry: Registry
  /** Counts one answered request and records its duration (and its cause when it was a 503). */
  observeRequest(request: ObservedRequest): void
}

/**
 * One answered request as the metrics see it.
 *
 * @example
 * const request: ObservedRequest = { method: 'GET', route: '/readyz', status: 503, seconds: 0.001, cause: 'not_ready' }
 */
export interface ObservedRequest {
  method: string
  /** The matched route template, or `unmatched` for a 404 that matched nothing. */
  route: string
  status: number
  seconds: number
  /** For a 503: why (the error code, e.g. `storage_unavailable`, `not_ready`, `shutting_down`). */
  cause?: string | undefined
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * Creates the registry and HTTP metrics of one service (see {@link ServiceMetrics}).
 *
 * @example
 * const { registry, observeRequest } = createServiceMetrics({ service: 'sample-worker' })
 */
export function createServiceMetrics(options: { service: string; defaultMetrics?: boolean }): ServiceMetrics {
  // No `service` label: Prometheus' `job` label already says which service was scraped.
  const registry = new Registry()
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'care_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'care_http_request_duration_seconds',
    help: 'Time from receiving a request to finishing its response, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: REQUEST_SECONDS_BUCKETS,
    registers: [registry],
  })
  const unavailable = new Counter({
    name: 'care_http_unavailable_total',
    help: 'Requests answered 503, by cause (error code).',
    labelNames: ['cause'] as const,
    registers: [registry],
  })
  return {
    registry,
    observeRequest({ method, route, status, seconds, cause }) {
      const m = KNOWN_METHODS.has(method) ? method : 'OTHER'
      requests.inc({ method: m, route, status: String(status) })
      duration.observe({ method: m, route }, seconds)
      if (status === 503) unavailable.inc({ cause: cause ?? 'unknown' })
    },
  }
}

/**
 * What an event log reports after each group commit: how many records one write carried, their
 * bytes, and how long the fdatasync took.
 *
 * @example
 * const commit: CommitObservation = { records: 12, bytes: 4096, syncSeconds: 0.0021 }
 */
export interface CommitObservation {
  records: number
  bytes: number
  syncSeconds: number
}

/**
 * Registers the event-log histograms (`care_event_log_commit_records`, `care_event_log_commit_bytes`,
 * `care_event_log_fdatasync_seconds`) and returns the observer to hand to the log's `onCommit` option.
 *
 * @example
 * const onCommit = eventLogCommitObserver(metrics.registry)
 * await EventLog.open({ dir, onCommit })
 */
export function eventLogCommitObserver(registry: Registry): (commit: CommitObservation) => void {
  const records = new Histogram({
    name: 'care_event_log_commit_records',
    help: 'Records written by one group commit (one write + one fdatasync).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  })
  const bytes = new Histogram({
    name: 'care_event_log_commit_bytes',
    help: 'Bytes written by one group commit.',
    buckets: [256, 1024, 4096, 16384, 65536, 262144, 1048576],
    registers: [registry],
  })
  const sync = new Histogram({
    name: 'care_event_log_fdatasync_seconds',
    help: 'Duration of the fdatasync that makes one group commit durable.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  })
  return function observeCommit(commit) {
    records.observe(commit.records)
    bytes.observe(commit.bytes)
    sync.observe(commit.syncSeconds)
  }
}

/**
 * Registers `care_ready`: 1 while the instance would answer `/readyz` 200, 0 while it recovers,
 * after a storage failure and from the start of a shutdown. The "no ready instance" alert reads it.
 *
 * @example
 * registerReadiness(metrics.registry, () => service !== undefined && !shuttingDown)
 */
export function registerReadiness(registry: Registry, isReady: () => boolean): void {
  new Gauge({
    name: 'care_ready',
    help: '1 while this instance is ready to take requests (what /readyz reports), else 0.',
    registers: [registry],
    collect() {
      this.set(isReady() ? 1 : 0)
    },
  })
}
