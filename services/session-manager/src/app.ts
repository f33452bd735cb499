import { type HttpObserver, type MetricsExposure, metricsAccessAllowed } from '@care/observability'
import {
  allowedMethods,
  type SessionManagerEndInput,
  type SessionManagerStartInput,
  type SessionManagerTouchInput,
  ULID_PATTERN,
  validateSessionManagerEndInput,
  validateSessionManagerStartInput,
  validateSessionManagerTouchInput,
} from '@care/schemas'
import { sessionGuard } from '@care/session-guard/hono'
import { Hono, type MiddlewareHandler } from 'hono'
import type { Registry } from 'prom-client'
import type { AuditSource } from './audit/audit-source.js'
import type { SessionManagerConfig } from './config.js'
import { requireRole } from './http/auth.js'
import { createErrorHandler, sendError } from './http/errors.js'
import { createExportHandler } from './http/export-route.js'
import type { SessionManagerEnv } from './http/http-env.js'
import { limitBody, requireJsonContentType, validJson } from './http/json-input.js'
import { buildOpenApiDocument } from './http/openapi.js'
import { observeRequests } from './observability/hono-observer.js'
import { type ReviewRouteOptions, registerReviewRoutes } from './review/routes.js'
import { MAX_TIMELINE_PAGE, type SessionLifecycle } from './sessions/session-lifecycle.js'
import { serviceExportProver } from './transparency/export-proofs.js'
import { registerTransparencyRoutes } from './transparency/routes.js'
import type { TransparencyLog } from './transparency/transparency-log.js'

export interface SessionManagerAppOptions {
  /** The session service once recovery has finished; undefined while the log is being recovered. */
  sessions: () => SessionLifecycle | undefined
  /** False once storage has failed in a way that needs a restart (e.g. a failed fsync). */
  storageHealthy?: () => boolean
  /** Why writes fail for now while the service stays ready (e.g. disk full); shown by /readyz. */
  storageNote?: () => string | undefined
  /** A damaged log segment found by the background scrub (file:line): `/readyz` answers 503 `log_integrity`. */
  integrityProblem?: () => string | undefined
  /** Detail of the store for `/readyz` (hot-state sizes, snapshot age, scrub progress and last result). */
  storeStatus?: () => object | undefined
  config: Pick<SessionManagerConfig, 'tokens' | 'bodyLimitBytes'>
  logger: { error(o: object, m: string): void; info?(o: object, m: string): void }
  /** Request ids, metrics, access log and trace span per request; none of these without it. */
  observer?: HttpObserver
  /** Serves `GET /metrics` from this registry when the exposure is `service-port`. */
  metrics?: { registry: Registry; exposure: MetricsExposure; host: string }
  /** True once a graceful shutdown began: `/readyz` answers 503 from then on. */
  shuttingDown?: () => boolean
  version?: string
  /** Where `GET /export` reads events (any `EventStore`, or the log itself); without it there is no /export. */
  audit?: () => AuditSource | undefined
  /** Named in `GET /healthz`, so a caller can tell this process from another one on the same port. */
  instanceId?: string
  /** What the service is waiting for before it is ready (e.g. the database and why), for `/readyz`. */
  notReadyReason?: () => string | undefined
  /** The embedded log's Merkle tree and checkpoints: serves /checkpoint and /proofs/*. */
  transparency?: { log: () => TransparencyLog | undefined; dataDir: string }
  /** The caregiver review page under `/review` (issue #16); none without it. `tokens` and `logger` come from here. */
  review?: Omit<ReviewRouteOptions, 'tokens' | 'logger'>
}

const SESSION_ID = new RegExp(ULID_PATTERN)

/**
 * The session-manager HTTP API (Hono). Knows nothing about files or SQL: it validates,
 * authorizes and hands requests to the {@link SessionLifecycle}.
 *
 * @example
 * const app = createSessionManagerApp({ sessions: () => service, config, logger })
 * serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 7400 })
 */
export function createSessionManagerApp(options: SessionManagerAppOptions): Hono<SessionManagerEnv> {
  const { config, sessions } = options
  const storageHealthy = options.storageHealthy ?? (() => true)
  const app = new Hono<SessionManagerEnv>()
  const openapi = buildOpenApiDocument(options.version ?? '0.0.0')

  const ready: MiddlewareHandler<SessionManagerEnv> = async function requireReady(c, next) {
    if (!sessions()) return sendError(c, 'not_ready')
    await next()
  }
  const service = () => sessions()!
  const caller = requireRole(config.tokens, 'caller')
  const auditor = requireRole(config.tokens, 'auditor')
  const jsonBody = [requireJsonContentType, limitBody(config.bodyLimitBytes)] as const
  const guard = sessionGuard()
  const shuttingDown = options.shuttingDown ?? (() => false)

  if (options.observer) app.use(observeRequests(options.observer))
  app.get('/healthz', (c) =>
    c.json(options.instanceId ? { status: 'ok', instance_id: options.instanceId } : { status: 'ok' }),
  )
  app.get('/readyz', async (c) => {
    if (shuttingDown()) return sendError(c, 'not_ready', { message: 'Shutting down.' })
    if (!sessions())
      return sendError(c, 'not_ready', { message: options.notReadyReason?.() ?? 'Recovering the event log.' })
    if (!storageHealthy())
      return sendError(c, 'storage_unavailable', { message: 'Storage failed; restart needed.' })
    const integrity = options.integrityProblem?.()
    if (integrity) return sendError(c, 'log_integrity', { message: integrity })
    const storage = options.storageNote?.()
    const store = options.storeStatus?.()
    return c.json({
      status: 'ready',
      open_sessions: await service().openSessions(),
      ...(storage ? { storage } : {}),
      ...(store ? { store } : {}),
    })
  })
  app.get('/openapi.json', (c) => c.json(openapi))
  const { metrics } = options
  if (metrics?.exposure.kind === 'service-port') {
    app.get('/metrics', async (c) => {
      if (!metricsAccessAllowed(metrics.exposure, c.req.header('authorization'), metrics.host))
        return sendError(c, 'unauthorized')
      return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType })
    })
  }

  app.post(
    '/sessions.start',
    caller,
    ...jsonBody,
    ready,
    validJson(validateSessionManagerStartInput),
    async (c) => {
      const { status, output } = await service().start(c.get('input') as SessionManagerStartInput)
      return c.json(output, status)
    },
  )
  app.post(
    '/sessions.end',
    caller,
    ...jsonBody,
    guard,
    ready,
    validJson(validateSessionManagerEndInput, { sessionIdFromGuard: true }),
    async (c) => {
      const { output } = await service().end(c.get('input') as SessionManagerEndInput)
      return c.json(output, 200)
    },
  )
  app.post(
    '/sessions.touch',
    caller,
    ...jsonBody,
    guard,
    ready,
    validJson(validateSessionManagerTouchInput, { sessionIdFromGuard: true }),
    async (c) => {
      const { output } = await service().touch(c.get('input') as SessionManagerTouchInput)
      return c.json(output, 200)
    },
  )

  app.get('/sessions/:session_id', auditor, ready, async (c) => {
    const id = c.req.param('session_id')
    if (!SESSION_ID.test(id)) return sendError(c, 'session_id_invalid')
    const summary = await service().describe(id)
    return summary ? c.json(summary) : sendError(c, 'session_not_found')
  })
  app.get('/sessions/:session_id/timeline', auditor, ready, async (c) => {
    const id = c.req.param('session_id')
    if (!SESSION_ID.test(id)) return sendError(c, 'session_id_invalid')
    const cursor = pageNumber(c.req.query('cursor'), 0, Number.MAX_SAFE_INTEGER)
    const limit = pageNumber(c.req.query('limit'), 1, MAX_TIMELINE_PAGE)
    if (cursor === null || limit === null) {
      return sendError(c, 'validation_failed', {
        fields: [
          {
            path: '/query',
            message: `cursor must be an integer >= 0 and limit one in [1, ${MAX_TIMELINE_PAGE}]`,
          },
        ],
      })
    }
    const page = await service().timeline(id, { cursor: cursor ?? 0, limit: limit ?? MAX_TIMELINE_PAGE })
    if (!page) return sendError(c, 'session_not_found')
    return c.json({
      session_id: id,
      events: page.events,
      next_cursor: page.nextCursor === undefined ? null : String(page.nextCursor),
    })
  })

  if (options.audit) {
    const tlog = options.transparency?.log
    const prover = tlog
      ? () => {
          const log = tlog()
          return log ? serviceExportProver(log) : undefined
        }
      : undefined
    app.get('/export', auditor, ready, createExportHandler(options.audit, options.logger, prover))
  }

  if (options.transparency) {
    const { log, dataDir } = options.transparency
    registerTransparencyRoutes(app, { transparency: log, dataDir, auditor, logger: options.logger })
  }

  if (options.review) {
    registerReviewRoutes(app, { ...options.review, tokens: config.tokens, logger: options.logger })
  }

  app.notFound((c) => {
    // A documented route asked with another method: 405 with the methods it does accept.
    const allow = allowedMethods(openapi, c.req.path)
    if (!allow) return sendError(c, 'not_found')
    c.header('Allow', allow.join(', '))
    return sendError(c, 'method_not_allowed')
  })
  app.onError(createErrorHandler(options.logger))
  return app
}

/** undefined when absent, null when present but not an integer in [min, max]. */
function pageNumber(value: string | undefined, min: number, max: number): number | undefined | null {
  if (value === undefined) return undefined
  if (!/^\d{1,16}$/.test(value)) return null
  const n = Number(value)
  return n >= min && n <= max ? n : null
}
