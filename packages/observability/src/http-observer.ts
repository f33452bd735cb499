import { randomUUID } from 'node:crypto'
import { type Context, context, type Span } from '@opentelemetry/api'
import type { ServiceMetrics } from './metrics.js'
import { endServerSpan, type HeaderSource, startServerSpan, type Tracing } from './tracing.js'

/** The request id header, read from the caller and always set on the response. */
export const REQUEST_ID_HEADER = 'x-request-id'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The caller's `x-request-id` when it is a plain token (letters, digits, `.`, `_`, `:`, `-`, at most
 * 128), otherwise a new UUID: a request id never carries spaces, quotes or log-injection text.
 *
 * @example
 * const id = requestIdFrom(req.headers['x-request-id']) // '3f0c...' or the caller's own id
 */
export function requestIdFrom(header: string | readonly string[] | null | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID()
}

/**
 * The logger an access log writes to (pino's `info(obj, msg)` fits).
 *
 * @example
 * const logger: AccessLogger = pino()
 */
export interface AccessLogger {
  info(o: object, m: string): void
}

/**
 * Everything one request contributes to metrics, access log and trace, framework-neutral: the Hono
 * and Express adapters of each service call `begin` when a request arrives and `end` once its
 * response has been sent.
 *
 * @example
 * const observer = createHttpObserver({ metrics, tracing, logger, accessLogSample: 1 })
 * const request = observer.begin('POST', req.headers)
 * res.setHeader('x-request-id', request.requestId)
 * res.on('finish', () => request.end({ route: '/infer', status: res.statusCode, bytes: 42 }))
 */
export interface HttpObserver {
  begin(method: string, headers: HeaderSource): ObservedRequestHandle
}

/**
 * One request in progress: its id, the trace context its handler should run in (undefined when
 * tracing is off), and `end`, which records it exactly once.
 *
 * @example
 * await (request.traceContext ? context.with(request.traceContext, next) : next())
 */
export interface ObservedRequestHandle {
  readonly requestId: string
  readonly traceContext: Context | undefined
  readonly span: Span | undefined
  end(outcome: RequestOutcome): void
}

/**
 * How a request ended. `route` is the matched route template; `cause` the error code of a 503.
 *
 * @example
 * const outcome: RequestOutcome = { route: '/sessions/:session_id', status: 200, bytes: 512 }
 */
export interface RequestOutcome {
  route: string
  status: number
  bytes?: number | undefined
  sessionId?: string | undefined
  cause?: string | undefined
}

/**
 * Options of {@link createHttpObserver}. `accessLogSample` is the fraction (0..1) of requests
 * answered below 500 that get an access-log line; 5xx answers are always logged.
 *
 * @example
 * const options: HttpObserverOptions = { metrics, tracing, logger, accessLogSample: 0.1 }
 */
export interface HttpObserverOptions {
  metrics: ServiceMetrics
  tracing: Tracing
  logger: AccessLogger
  accessLogSample: number
  random?: () => number
}

/**
 * Creates the per-request observer of a service (see {@link HttpObserver}). The access-log line
 * (`msg: "request"`) has method, route template, status, duration, request id, session id when
 * present and response bytes; never the path's ids, tokens or bodies.
 *
 * @example
 * const observer = createHttpObserver({ metrics, tracing, logger, accessLogSample: 1 })
 */
export function createHttpObserver(options: HttpObserverOptions): HttpObserver {
  const recorder: RequestRecorder = {
    metrics: options.metrics,
    logger: options.logger,
    accessLogSample: options.accessLogSample,
    random: options.random ?? Math.random,
  }
  const { tracing } = options
  return {
    begin(method, headers) {
      const requestId = requestIdFrom(readHeader(headers, REQUEST_ID_HEADER))
      if (!tracing.enabled) return new ObservedRequest(recorder, method, requestId, undefined)
      const traced = startServerSpan(tracing.tracer, method, headers)
      traced.span.setAttribute('http.request.header.x-request-id', requestId)
      return new ObservedRequest(recorder, method, requestId, traced)
    },
  }
}

/** What every request of one observer records into, shared rather than captured per request. */
interface RequestRecorder {
  metrics: ServiceMetrics
  logger: AccessLogger
  accessLogSample: number
  random: () => number
}

/**
 * One request in progress. A class rather than an object literal with an `end` closure: a request
 * costs one small object, and with tracing off it touches neither AsyncLocalStorage nor a `Date`.
 */
class ObservedRequest implements ObservedRequestHandle {
  private readonly started = performance.now()
  private ended = false

  constructor(
    private readonly recorder: RequestRecorder,
    private readonly method: string,
    readonly requestId: string,
    private readonly traced: { span: Span; ctx: Context } | undefined,
  ) {}

  get traceContext(): Context | undefined {
    return this.traced?.ctx
  }

  get span(): Span | undefined {
    return this.traced?.span
  }

  end(outcome: RequestOutcome): void {
    if (this.ended) return
    this.ended = true
    const { recorder, method, traced } = this
    const seconds = (performance.now() - this.started) / 1000
    recorder.metrics.observeRequest({
      method,
      route: outcome.route,
      status: outcome.status,
      seconds,
      cause: outcome.cause,
    })
    if (traced) endServerSpan(traced.span, { method, ...outcome })
    // The access-log line is built only for a request that is logged.
    if (
      outcome.status >= 500 ||
      (recorder.accessLogSample > 0 && recorder.random() < recorder.accessLogSample)
    ) {
      const traceId = traced?.span.spanContext().traceId
      recorder.logger.info(
        {
          request_id: this.requestId,
          method,
          route: outcome.route,
          status: outcome.status,
          duration_ms: Math.round(seconds * 1e4) / 10,
          ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
          ...(outcome.sessionId ? { session_id: outcome.sessionId } : {}),
          ...(traceId ? { trace_id: traceId } : {}),
        },
        'request',
      )
    }
  }
}

function readHeader(headers: HeaderSource, name: string): string | readonly string[] | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  return headers[name]
}

/**
 * Runs `fn` inside the request's trace context (or directly when tracing is off).
 *
 * @example
 * await withTraceContext(request.traceContext, () => next())
 */
export function withTraceContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn()
}
