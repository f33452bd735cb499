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
  const answered = new AnsweredRequests()
  new RequestCounter(answered, registry)
  new RequestDurationHistogram(answered, registry)
  const unavailable = new Counter({
    name: 'care_http_unavailable_total',
    help: 'Requests answered 503, by cause (error code).',
    labelNames: ['cause'] as const,
    registers: [registry],
  })
  return {
    registry,
    observeRequest({ method, route, status, seconds, cause }) {
      answered.record(KNOWN_METHODS.has(method) ? method : 'OTHER', route, status, seconds)
      if (status === 503) unavailable.inc({ cause: cause ?? 'unknown' })
    },
  }
}

/** One method and route template: answers by status, and the duration histogram's buckets. */
class RequestSeries {
  readonly statuses = new Map<number, number>()
  /** Observations per bucket, not cumulative; the last slot is above the largest bound (+Inf). */
  readonly buckets = new Float64Array(REQUEST_SECONDS_BUCKETS.length + 1)
  sum = 0
  count = 0

  constructor(
    readonly method: string,
    readonly route: string,
  ) {}
}

/**
 * The answered requests behind `care_http_requests_total` and `care_http_request_duration_seconds`,
 * kept per method and route template in plain numbers. Recording one request is two map lookups and
 * a few additions, with no label object, label validation or label hashing (which prom-client's
 * `inc` and `observe` do on every call); the two metrics read these numbers when scraped.
 */
class AnsweredRequests {
  private readonly byMethod = new Map<string, Map<string, RequestSeries>>()

  record(method: string, route: string, status: number, seconds: number): void {
    let routes = this.byMethod.get(method)
    if (routes === undefined) {
      routes = new Map()
      this.byMethod.set(method, routes)
    }
    let series = routes.get(route)
    if (series === undefined) {
      series = new RequestSeries(method, route)
      routes.set(route, series)
    }
    series.statuses.set(status, (series.statuses.get(status) ?? 0) + 1)
    // A bucket counts the observations at or below its bound (`le`), as prom-client's do.
    let bucket = 0
    while (bucket < REQUEST_SECONDS_BUCKETS.length && seconds > REQUEST_SECONDS_BUCKETS[bucket]!) bucket++
    series.buckets[bucket]! += 1
    series.sum += seconds
    series.count += 1
  }

  *series(): Iterable<RequestSeries> {
    for (const routes of this.byMethod.values()) yield* routes.values()
  }

  clear(): void {
    this.byMethod.clear()
  }
}

type RequestLabel = 'method' | 'route' | 'status'
type CounterData = Awaited<ReturnType<Counter<RequestLabel>['get']>>

/** `care_http_requests_total`, read from {@link AnsweredRequests} when scraped. */
class RequestCounter extends Counter<RequestLabel> {
  constructor(
    private readonly answered: AnsweredRequests,
    registry: Registry,
  ) {
    super({
      name: 'care_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    })
  }

  /** prom-client's own metric object (name, help, type, aggregator), with the values recorded. */
  override async get(): Promise<CounterData> {
    const data = await super.get()
    const values: CounterData['values'] = []
    for (const { method, route, statuses } of this.answered.series())
      for (const [status, value] of statuses)
        values.push({ value, labels: { method, route, status: String(status) } })
    data.values = values
    return data
  }

  override reset(): void {
    super.reset()
    // prom-client's constructor calls reset() before this class has its fields.
    ;(this.answered as AnsweredRequests | undefined)?.clear()
  }
}

const HISTOGRAM_HELP =
  'Time from receiving a request to finishing its response, by method and route template.'

type DurationLabel = 'method' | 'route'

/** One line of a histogram as prom-client's registry prints it (`sharedLabels` are the series' own). */
interface HistogramLine {
  value: number
  metricName: string
  labels: Record<string, string | number>
  sharedLabels: Record<string, string>
  /** prom-client's buckets carry `exemplar: null` when exemplars are off; kept for the same JSON. */
  exemplar?: null
}

/**
 * `care_http_request_duration_seconds`, read from {@link AnsweredRequests} when scraped, in the
 * shape prom-client's own histogram gives the registry (cumulative `le` buckets, `+Inf`, `_sum`, `_count`).
 */
class RequestDurationHistogram extends Histogram<DurationLabel> {
  constructor(
    private readonly answered: AnsweredRequests,
    registry: Registry,
  ) {
    super({
      name: 'care_http_request_duration_seconds',
      help: HISTOGRAM_HELP,
      labelNames: ['method', 'route'] as const,
      buckets: REQUEST_SECONDS_BUCKETS,
      registers: [registry],
    })
  }

  /** What the registry prints; prom-client's `get()` builds on it, so both read the same numbers. */
  async getForPromString(): Promise<{
    name: string
    help: string
    type: string
    values: HistogramLine[]
    aggregator: string
  }> {
    const name = 'care_http_request_duration_seconds'
    const values: HistogramLine[] = []
    for (const series of this.answered.series()) {
      const sharedLabels = { method: series.method, route: series.route }
      let cumulative = 0
      for (let i = 0; i < REQUEST_SECONDS_BUCKETS.length; i++) {
        cumulative += series.buckets[i]!
        values.push({
          value: cumulative,
          metricName: `${name}_bucket`,
          labels: { le: REQUEST_SECONDS_BUCKETS[i]! },
          exemplar: null,
          sharedLabels,
        })
      }
      values.push({
        value: series.count,
        metricName: `${name}_bucket`,
        labels: { le: '+Inf' },
        exemplar: null,
        sharedLabels,
      })
      values.push({ value: series.sum, metricName: `${name}_sum`, labels: {}, sharedLabels })
      values.push({ value: series.count, metricName: `${name}_count`, labels: {}, sharedLabels })
    }
    return { name, help: HISTOGRAM_HELP, type: 'histogram', values, aggregator: 'sum' }
  }

  override reset(): void {
    super.reset()
    // prom-client's constructor calls reset() before this class has its fields.
    ;(this.answered as AnsweredRequests | undefined)?.clear()
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
