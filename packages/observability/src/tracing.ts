import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'

/** The semantic-convention attribute that records a session (`session.id`). */
export const SESSION_ID_ATTRIBUTE = 'session.id'

/**
 * A service's tracing: off (the default, costing one boolean check per request) or exporting spans
 * through the OpenTelemetry SDK. When on, `traceparent`/`tracestate` and `baggage` are read from
 * requests and written to outgoing calls (W3C Trace Context and Baggage).
 *
 * @example
 * const tracing = startTracing({ service: 'session-manager' }) // reads OTEL_EXPORTER_OTLP_ENDPOINT
 * if (tracing.enabled) logger.info('exporting spans over OTLP')
 * process.once('SIGTERM', () => tracing.shutdown())
 */
export interface Tracing {
  readonly enabled: boolean
  /** The tracer spans are made with (a no-op tracer when off). */
  readonly tracer: Tracer
  /** Exports what is buffered and stops exporting. */
  shutdown(): Promise<void>
}

/**
 * Options of {@link startTracing}. `exporter` replaces the OTLP exporter (tests pass the SDK's
 * `InMemorySpanExporter`); without it tracing is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and `OTEL_SDK_DISABLED` is not `true`.
 *
 * @example
 * const options: TracingOptions = { service: 'sample-worker', env: process.env }
 */
export interface TracingOptions {
  service: string
  version?: string
  env?: NodeJS.ProcessEnv
  exporter?: SpanExporter
}

const OFF: Tracing = {
  enabled: false,
  tracer: trace.getTracer('care-off'),
  shutdown: async () => {},
}

/**
 * Starts tracing when configured (see {@link TracingOptions}) and registers the provider, an
 * AsyncLocalStorage context manager and the W3C propagators globally, so `@opentelemetry/api`
 * users in the same process (such as `@care/session-guard`) see the active span.
 *
 * @example
 * const tracing = startTracing({ service: 'session-manager', version: '0.1.0' })
 */
export function startTracing(options: TracingOptions): Tracing {
  const env = options.env ?? process.env
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true'
  if (disabled || (!options.exporter && !endpoint)) return OFF
  const resource = resourceFromAttributes({
    'service.name': env.OTEL_SERVICE_NAME?.trim() || options.service,
    ...(options.version ? { 'service.version': options.version } : {}),
    ...resourceAttributesFrom(env.OTEL_RESOURCE_ATTRIBUTES),
  })
  const processor = options.exporter
    ? new SimpleSpanProcessor({ exporter: options.exporter })
    : new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })
  const provider = new TracerProvider({ resource, sampler: samplerFrom(env), spanProcessors: [processor] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  )
  trace.setGlobalTracerProvider(provider)
  return {
    enabled: true,
    tracer: provider.getTracer(`@care/${options.service}`, options.version),
    shutdown: () => provider.shutdown(),
  }
}

/** `OTEL_TRACES_SAMPLER` (`always_on`, `traceidratio`, `parentbased_*`) with `OTEL_TRACES_SAMPLER_ARG`. */
function samplerFrom(env: NodeJS.ProcessEnv): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on'
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1')
  const root = name.endsWith('traceidratio')
    ? new TraceIdRatioBasedSampler(Number.isFinite(ratio) ? ratio : 1)
    : new AlwaysOnSampler()
  return name.startsWith('parentbased') ? new ParentBasedSampler({ root }) : root
}

function resourceAttributesFrom(list: string | undefined): Attributes {
  const attributes: Attributes = {}
  for (const pair of (list ?? '').split(',')) {
    const at = pair.indexOf('=')
    if (at > 0)
      attributes[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return attributes
}

/** Header access for extracting and injecting trace context. */
const HEADER_GETTER = {
  keys: (carrier: HeaderSource) => (carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier)),
  get(carrier: HeaderSource, key: string): string | string[] | undefined {
    if (carrier instanceof Headers) return carrier.get(key) ?? undefined
    const value = carrier[key]
    return value === undefined ? undefined : (value as string | string[])
  },
}

/** Request headers as Fetch `Headers` or Node's `IncomingHttpHeaders`. */
export type HeaderSource = Headers | Readonly<Record<string, string | readonly string[] | undefined>>

/**
 * Starts the SERVER span of an incoming request, as a child of the caller's `traceparent` when
 * there is one. Returns the span and the context to run the handler in.
 *
 * @example
 * const { span, ctx } = startServerSpan(tracing.tracer, 'POST', req.headers)
 * await context.with(ctx, next)
 */
export function startServerSpan(
  tracer: Tracer,
  method: string,
  headers: HeaderSource,
): { span: Span; ctx: Context } {
  const parent = propagation.extract(ROOT_CONTEXT, headers, HEADER_GETTER)
  const span = tracer.startSpan(
    method,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': method } },
    parent,
  )
  return { span, ctx: trace.setSpan(parent, span) }
}

/**
 * Names and closes a request span once the route and status are known (`POST /sessions.start`).
 *
 * @example
 * endServerSpan(span, { method: 'POST', route: '/sessions.start', status: 201 })
 */
export function endServerSpan(
  span: Span,
  end: { method: string; route: string; status: number; sessionId?: string | undefined },
): void {
  span.updateName(`${end.method} ${end.route}`)
  span.setAttribute('http.route', end.route)
  span.setAttribute('http.response.status_code', end.status)
  if (end.sessionId) span.setAttribute(SESSION_ID_ATTRIBUTE, end.sessionId)
  if (end.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
  span.end()
}

/**
 * Wraps a `fetch` so each call is a CLIENT span whose context travels in `traceparent` (and
 * `baggage`, when the active context carries any). With tracing off it returns `fetchImpl` itself.
 *
 * @example
 * const fetchTraced = tracedFetch(tracing, globalThis.fetch)
 * await fetchTraced(url, { method: 'POST', body })
 */
export function tracedFetch<
  F extends (input: string | URL | Request, init?: RequestInit) => Promise<Response>,
>(tracing: Tracing, fetchImpl: F): F {
  if (!tracing.enabled) return fetchImpl
  const traced = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET')
    const span = tracing.tracer.startSpan(method, {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'url.full': String(input instanceof Request ? input.url : input),
      },
    })
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
    propagation.inject(trace.setSpan(context.active(), span), headers, {
      set: (carrier: Headers, key: string, value: string) => carrier.set(key, value),
    })
    try {
      const res = await fetchImpl(input, { ...init, headers })
      span.setAttribute('http.response.status_code', res.status)
      if (res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      return res
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      throw err
    } finally {
      span.end()
    }
  }
  return traced as F
}
