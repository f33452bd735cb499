import {
  type HttpObserver,
  type MetricsExposure,
  metricsAccessAllowed,
  REQUEST_ID_HEADER,
  withTraceContext,
} from '@care/observability'
import { errorResponse } from '@care/schemas'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { Registry } from 'prom-client'

/**
 * Express middleware that gives every request a request id (`x-request-id`, the caller's or a new
 * one, returned on the response), runs the rest of the chain inside its trace span when tracing is
 * on, and records it once the response is finished: metrics by route template (`unmatched` for
 * paths no route matched), one access-log line, and the span's route, status and `session.id`.
 *
 * @example
 * app.use(observeRequests(observer))
 */
export function observeRequests(observer: HttpObserver): RequestHandler {
  return function observeRequest(req: Request, res: Response, next: NextFunction): void {
    const request = observer.begin(req.method, req.headers)
    res.setHeader(REQUEST_ID_HEADER, request.requestId)
    let cause: string | undefined
    const json = res.json.bind(res)
    res.json = (body: unknown) => {
      if (res.statusCode === 503) cause = errorCodeOf(body)
      return json(body)
    }
    res.once('close', () => {
      const length = res.getHeader('content-length')
      request.end({
        route: req.route ? `${req.baseUrl}${String((req.route as { path: unknown }).path)}` : 'unmatched',
        // A response never finished (client gone, or cut off by a shutdown) is recorded as 499.
        status: res.writableFinished ? res.statusCode : CLIENT_CLOSED_REQUEST,
        bytes: length === undefined ? undefined : Number(length),
        sessionId: req.sessionId,
        cause,
      })
    })
    withTraceContext(request.traceContext, next)
  }
}

/** The de-facto status (nginx's) for a request whose client went away before the answer was sent. */
const CLIENT_CLOSED_REQUEST = 499

function errorCodeOf(body: unknown): string | undefined {
  const code = (body as { error?: unknown } | null)?.error
  return typeof code === 'string' ? code : undefined
}

/**
 * `GET /metrics` on the worker's own port, for `service-port` exposure (see `CARE_METRICS_TOKENS`).
 *
 * @example
 * app.get('/metrics', serveMetrics({ registry, exposure, host: '127.0.0.1' }))
 */
export function serveMetrics(metrics: {
  registry: Registry
  exposure: MetricsExposure
  host: string
}): RequestHandler {
  return function metricsEndpoint(req, res, next) {
    if (!metricsAccessAllowed(metrics.exposure, req.headers.authorization, metrics.host)) {
      const { status, body } = errorResponse('unauthorized')
      res.status(status).json(body)
      return
    }
    metrics.registry.metrics().then((text) => {
      res.type(metrics.registry.contentType).send(text)
    }, next)
  }
}
