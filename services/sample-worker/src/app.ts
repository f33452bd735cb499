import { type EventLog, StorageError } from '@care/event-log'
import {
  type HttpObserver,
  isClientDisconnect,
  type MetricsExposure,
  type Tracing,
  tracedFetch,
} from '@care/observability'
import { allowedMethods, errorResponse, type FieldError } from '@care/schemas'
import { classifyContentType, type VerifyResult } from '@care/session-guard'
import {
  requireSessionId,
  type SessionFetch,
  sessionErrorHandler,
  sessionFetch,
  sessionGuard,
} from '@care/session-guard/express'
import express, { type NextFunction, type Request, type Response } from 'express'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { monotonicFactory } from 'ulid'
import { observeRequests, serveMetrics } from './observability/express-observer.js'
import { buildWorkerOpenApiDocument } from './openapi.js'
import {
  type Annotations,
  validateAnnotateStepInput,
  validateAnnotateStepOutput,
  validateWorkerInferInput,
  type WorkerEvent,
  type WorkerEventName,
} from './worker-records.js'

/** Largest request body the worker reads (16 KiB); bigger ones get 413 `payload_too_large`. */
export const MAX_BODY_BYTES = 16 * 1024

/**
 * What the worker app needs. `downstreamUrl` is read per call because the default (this worker's
 * own `/steps/annotate`) is only known once the server listens.
 *
 * @example
 * const options: WorkerAppOptions = { eventLog, logger, downstreamUrl: () => 'http://127.0.0.1:7401/steps/annotate' }
 */
export interface WorkerAppOptions {
  /** Where the worker's session-tagged records go: a `@care/event-log` (chained, fdatasync'd). */
  eventLog: WorkerEventLog
  logger: Logger
  downstreamUrl: () => string
  /** How long to wait for the downstream step; default 5 s. */
  downstreamTimeoutMs?: number
  /** The `fetch` the propagation helper wraps; tests may substitute one. */
  fetchImpl?: SessionFetch
  /** Named in `GET /healthz`, so `pnpm start` can tell this process from another on the same port. */
  instanceId?: string
  /** The guard's optional check that the session exists and is open (see session-verifier.ts). */
  verify?: (sessionId: string) => VerifyResult | Promise<VerifyResult>
  /** The version in `GET /openapi.json`. */
  version?: string
  /** Request ids, metrics, access log and trace spans; without it, none of these. */
  observer?: HttpObserver
  /** Outgoing calls become CLIENT spans carrying `traceparent` when tracing is on. */
  tracing?: Tracing
  /** Serves `GET /metrics` from this registry when the exposure is `service-port`. */
  metrics?: { registry: Registry; exposure: MetricsExposure; host: string }
  /** True once a graceful shutdown began: `/readyz` answers 503 from then on. */
  shuttingDown?: () => boolean
}

type ErrorOf = ReturnType<typeof errorResponse>

/**
 * The sample worker as an Express 5 app: `POST /infer` (guarded, validated, recorded, calls the
 * downstream step with the session id propagated), `POST /steps/annotate` (the guarded downstream
 * step), `GET /healthz`, and JSON errors in the shared shape for everything else.
 *
 * @example
 * const app = createWorkerApp({ eventLog, logger, downstreamUrl: () => `${baseUrl}/steps/annotate` })
 * app.listen(0, '127.0.0.1')
 */
export function createWorkerApp({
  eventLog,
  logger,
  downstreamUrl,
  downstreamTimeoutMs = 5000,
  fetchImpl = globalThis.fetch,
  instanceId,
  verify,
  version = '0.0.0',
  observer,
  tracing,
  metrics,
  shuttingDown = () => false,
}: WorkerAppOptions): express.Express {
  const nextId = monotonicFactory()
  const app = express()
  app.disable('x-powered-by')
  if (observer) app.use(observeRequests(observer))
  const downstreamFetch = tracing ? tracedFetch(tracing, fetchImpl) : fetchImpl

  // The guard reads the JSON body itself (capped, with reserved keys refused), so no express.json().
  const guard = sessionGuard({
    sources: ['header', 'body'],
    maxBodyBytes: MAX_BODY_BYTES,
    ...(verify ? { verify: (id: string) => verify(id) } : {}),
  })
  const openapi = buildWorkerOpenApiDocument(version)

  app.get('/healthz', (_req, res) => {
    res.json(instanceId ? { status: 'ok', instance_id: instanceId } : { status: 'ok' })
  })
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi)
  })
  app.get('/readyz', (_req, res) => {
    if (shuttingDown()) {
      res.setHeader('retry-after', '1')
      return send(res, errorResponse('not_ready', { message: 'Shutting down.' }))
    }
    res.json({ status: 'ready' })
  })
  if (metrics?.exposure.kind === 'service-port') app.get('/metrics', serveMetrics(metrics))

  app.post('/infer', requireJsonBody, guard, async (req, res) => {
    const sessionId = requireSessionId(req)
    const checked = validateWorkerInferInput.validate(req.body)
    if (!checked.ok) return send(res, validationFailed(checked.fields))
    const input = checked.value
    const record = (event: WorkerEventName): WorkerEvent => ({
      schema_version: '1.1',
      record_id: nextId(),
      session_id: sessionId,
      user_id: input.user_id,
      timestamp: new Date().toISOString(),
      source: 'sample_worker',
      origin: 'system',
      event,
      input_record_id: input.record_id,
    })

    if (!(await appendOrAnswer(eventLog, record('infer.received'), res, logger))) return

    let annotations: Annotations
    try {
      annotations = await annotate(
        sessionFetch(sessionId, downstreamFetch),
        downstreamUrl(),
        downstreamTimeoutMs,
        sessionId,
        {
          input_record_id: input.record_id,
          user_id: input.user_id,
          text: input.text,
        },
      )
    } catch (err) {
      logger.warn({ err, session_id: sessionId }, 'downstream step failed')
      await eventLog.append(record('infer.failed')).catch(() => {})
      return send(res, errorResponse('upstream_unavailable'))
    }

    const output: WorkerEvent = {
      ...record('infer.output'),
      output: { label: annotations.question ? 'question' : 'statement', annotations },
    }
    if (!(await appendOrAnswer(eventLog, output, res, logger))) return
    res.status(200).json(output)
  })

  app.post('/steps/annotate', requireJsonBody, guard, async (req, res) => {
    const sessionId = requireSessionId(req)
    const checked = validateAnnotateStepInput.validate(req.body)
    if (!checked.ok) return send(res, validationFailed(checked.fields))
    const { text } = checked.value
    const annotations: Annotations = {
      characters: [...text].length,
      words: text.split(/\s+/).filter(Boolean).length,
      question: text.trim().endsWith('?'),
    }
    const done: WorkerEvent = {
      schema_version: '1.1',
      record_id: nextId(),
      session_id: sessionId,
      user_id: checked.value.user_id,
      timestamp: new Date().toISOString(),
      source: 'sample_worker',
      origin: 'system',
      event: 'annotate.done',
      input_record_id: checked.value.input_record_id,
      annotations,
    }
    if (!(await appendOrAnswer(eventLog, done, res, logger))) return
    res.status(200).json({ session_id: sessionId, annotations })
  })

  app.use((req, res) => {
    // A documented route asked with another method: 405 with the methods it does accept, as the
    // session-manager answers (the same rule, from @care/schemas, over this service's OpenAPI document).
    const allow = allowedMethods(openapi, req.path)
    if (!allow) return send(res, errorResponse('not_found'))
    res.setHeader('Allow', allow.join(', '))
    send(res, errorResponse('method_not_allowed'))
  })
  app.use(
    sessionErrorHandler({
      onUnexpected: (err, req) => {
        // A client that hung up mid-request (or was cut off by a shutdown) is not the worker's error.
        if (isClientDisconnect(err)) logger.info({ path: req.path }, 'client disconnected mid-request')
        else logger.error({ err, path: req.path }, 'unexpected')
      },
    }),
  )
  return app
}

function send(res: Response, { status, body }: ErrorOf): void {
  res.status(status).json(body)
}

function validationFailed(fields: FieldError[]): ErrorOf {
  return errorResponse('validation_failed', { fields })
}

/**
 * The part of the worker's `@care/event-log` the app uses: `append` resolves once the record is
 * fdatasync'd and rejects with `StorageError` when it is not stored.
 *
 * @example
 * const { log } = await EventLog.open<WorkerEvent>({ dir: '.care-data/worker' })
 * const eventLog: WorkerEventLog = log
 */
export type WorkerEventLog = Pick<EventLog<WorkerEvent>, 'append' | 'close'>

/** Appends durably, or answers 503 with Retry-After and returns false: never 2xx without the record. */
async function appendOrAnswer(
  eventLog: WorkerEventLog,
  event: WorkerEvent,
  res: Response,
  logger: Logger,
): Promise<boolean> {
  try {
    await eventLog.append(event)
    return true
  } catch (err) {
    if (!(err instanceof StorageError)) throw err
    logger.error({ err, session_id: event.session_id, event: event.event }, 'event log append failed')
    res.setHeader('retry-after', '1')
    send(res, errorResponse('storage_unavailable'))
    return false
  }
}

async function annotate(
  fetchInSession: SessionFetch,
  url: string,
  timeoutMs: number,
  sessionId: string,
  step: { input_record_id: string; user_id: string; text: string },
): Promise<Annotations> {
  const res = await fetchInSession(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(step),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const body: unknown = await res.json()
  if (!res.ok) throw new Error(`downstream answered ${res.status}`)
  if (!validateAnnotateStepOutput.check(body)) throw new Error('downstream answered an unexpected body')
  if (body.session_id !== sessionId) throw new Error('downstream answered for another session')
  return body.annotations
}

function requireJsonBody(req: Request, res: Response, next: NextFunction) {
  if (classifyContentType(req.headers['content-type']) === 'not-json')
    return send(res, errorResponse('unsupported_media_type'))
  next()
}
