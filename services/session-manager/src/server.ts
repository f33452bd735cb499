import type { Server } from 'node:http'
import type { LogPosition } from '@care/event-log'
import {
  closeGracefully,
  createHttpObserver,
  createServiceMetrics,
  loadObservabilityConfig,
  type ObservabilityConfig,
  registerReadiness,
  startMetricsServer,
  startTracing,
  type Tracing,
} from '@care/observability'
import { answerClientErrorsAsJson } from '@care/session-guard/node'
import { type ServerType, serve } from '@hono/node-server'
import { type Logger, pino } from 'pino'
import { createSessionManagerApp } from './app.js'
import { logAuditSource, storeAuditSource } from './audit/audit-source.js'
import { isLoopback, type SessionManagerConfig } from './config.js'
import { createIdFactory } from './ids/id-factory.js'
import { createSessionTelemetry } from './observability/session-telemetry.js'
import { PostgresEventStore } from './postgres/postgres-event-store.js'
import { PostgresSessionService } from './postgres/postgres-session-service.js'
import type { SessionLifecycle } from './sessions/session-lifecycle.js'
import { type Clock, SessionService } from './sessions/session-service.js'
import { StoreUnavailableError } from './store/event-store.js'
import { FileEventStore } from './store/file-event-store.js'

export interface RunningSessionManager {
  /** The bound port (useful with PORT=0). */
  port: number
  /** The port of the separate `/metrics` listener, when `CARE_METRICS_PORT` asked for one. */
  metricsPort?: number
  /** Resolves once the log is recovered and the service answers requests. */
  ready: Promise<void>
  /**
   * Graceful stop: `/readyz` answers 503 at once, no new connections are accepted, requests in flight
   * get the shutdown grace period to finish, remaining connections are then closed, and the log is
   * synced and its lock released.
   */
  stop(): Promise<void>
}

export interface StartOptions {
  logger?: Logger
  clock?: Clock
  version?: string
  /** Metrics exposure, access-log sampling and shutdown grace; defaults to `loadObservabilityConfig({})`. */
  observability?: ObservabilityConfig
  /** Tracing as started by `startTracing`; off by default. */
  tracing?: Tracing
}

/**
 * Starts the HTTP server at once (so /healthz and /readyz answer during recovery), recovers the
 * event log, then begins taking session requests.
 *
 * @example
 * const running = await startSessionManager(loadConfig())
 * await running.ready
 * process.on('SIGTERM', () => running.stop())
 */
export async function startSessionManager(
  config: SessionManagerConfig,
  options: StartOptions = {},
): Promise<RunningSessionManager> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'session-manager' } })
  if (config.tokens.size === 0) {
    logger.warn(
      { host: config.host },
      `no bearer tokens configured: serving ${isLoopback(config.host) ? 'loopback only' : config.host} without authentication`,
    )
  }
  let service: SessionLifecycle | undefined
  let store: FileEventStore | undefined
  let stopRequested = false
  let databaseEvents: PostgresEventStore | undefined
  let shuttingDown = false
  const observability = options.observability ?? loadObservabilityConfig({})
  const tracing = options.tracing ?? startTracing({ service: 'session-manager', env: {} })
  const metrics = createServiceMetrics({ service: 'session-manager' })
  const telemetry = createSessionTelemetry(metrics, tracing)
  telemetry.watchOpenSessions(() => service?.openSessions())
  registerReadiness(
    metrics.registry,
    () => service !== undefined && !shuttingDown && (store?.healthy ?? true),
  )
  let waitingFor: string | undefined
  const app = createSessionManagerApp({
    instanceId: config.instanceId,
    notReadyReason: () => waitingFor,
    observer: createHttpObserver({
      metrics,
      tracing,
      logger,
      accessLogSample: observability.accessLogSample,
    }),
    metrics: { registry: metrics.registry, exposure: observability.metrics, host: config.host },
    shuttingDown: () => shuttingDown,
    sessions: () => service,
    storageHealthy: () => store?.healthy ?? true,
    storageNote: () => store?.storageNote,
    config,
    logger,
    version: options.version,
    // The log read directly (lock-free, chain-checked), so exports read lines back by position.
    // On PostgreSQL, exports scan the database (one snapshot, log order) instead of a data dir.
    audit: () =>
      service
        ? databaseEvents
          ? storeAuditSource(databaseEvents)
          : logAuditSource(config.dataDir)
        : undefined,
  })
  const server = await listen(app.fetch, config.host, config.port)
  const port = (server.address() as { port: number }).port
  const metricsServer =
    observability.metrics.kind === 'separate'
      ? await startMetricsServer(metrics.registry, observability.metrics).catch(async (error: unknown) => {
          await new Promise((resolve) => server.close(resolve))
          throw error
        })
      : undefined
  if (metricsServer) logger.info({ host: config.host, port: metricsServer.port }, 'serving /metrics')
  logger.info({ host: config.host, port, data_dir: config.dataDir }, 'listening; recovering the event log')

  const ready = (async () => {
    const started = performance.now()
    const { store: storeConfig } = config
    if (storeConfig.kind === 'postgres') {
      const live = new PostgresSessionService({
        policy: config.policy,
        newId: createIdFactory(),
        clock: options.clock,
        logger,
        database: { url: storeConfig.url, poolSize: storeConfig.poolSize },
        schema: storeConfig.schema,
        ownerRole: storeConfig.ownerRole,
      })
      // An unreachable database is waited for (readyz says not_ready); an unsafe one stops the start.
      for (;;) {
        try {
          await live.recover()
          break
        } catch (error) {
          if (!(error instanceof StoreUnavailableError) || stopRequested) {
            await live.close()
            throw error
          }
          waitingFor = `Waiting for the database (retrying every second): ${error.message}`
          logger.warn({ err: error }, 'database unavailable; retrying in 1 s')
          await new Promise((resolve) => setTimeout(resolve, 1000))
        }
      }
      waitingFor = undefined
      databaseEvents = PostgresEventStore.over(live.pool, storeConfig.schema)
      telemetry.watchPool(() => live.pool)
      telemetry.recovered((performance.now() - started) / 1000)
      service = live
      logger.info(
        { store: 'postgres', schema: storeConfig.schema, ms: Math.round(performance.now() - started) },
        'migrated; ready',
      )
      return
    }
    const live = new SessionService<LogPosition>({
      policy: config.policy,
      newId: createIdFactory(),
      clock: options.clock,
      logger,
    })
    let events = 0
    await live.recover(async (apply) => {
      store = await FileEventStore.open(
        {
          dir: config.dataDir,
          repair: config.repair,
          maxFileBytes: config.maxLogFileBytes,
          logger,
          onCommit: telemetry.onCommit,
        },
        (event, ref) => {
          apply(event, ref)
          events++
        },
      )
      return telemetry.observeStore(store)
    })
    telemetry.recovered((performance.now() - started) / 1000)
    service = live
    logger.info(
      { events, open_sessions: live.openSessions(), ms: Math.round(performance.now() - started) },
      'recovered; ready',
    )
  })()
  ready.catch(() => {}) // the caller decides what a failed recovery means

  let stopping: Promise<void> | undefined
  return {
    port,
    ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
    ready,
    stop() {
      stopRequested = true
      shuttingDown = true
      stopping ??= (async () => {
        logger.info(
          { grace_ms: observability.shutdownGraceMs },
          'shutting down: finishing requests in flight',
        )
        const finished = await closeGracefully(server as Server, { graceMs: observability.shutdownGraceMs })
        if (!finished) logger.warn({}, 'shutdown grace period expired; closed the remaining connections')
        await ready.catch(() => {})
        await service?.close()
        await store?.close()
        await metricsServer?.close()
        logger.info({}, 'stopped')
      })()
      return stopping
    },
  }
}

function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  hostname: string,
  port: number,
): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server))
    server.once('error', reject)
    answerClientErrorsAsJson(server)
  })
}
