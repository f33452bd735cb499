import type { Server } from 'node:http'
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
import { destination, type Logger, pino } from 'pino'
import { createSessionManagerApp } from './app.js'
import { type Backend, openBackend } from './backend.js'
import { isLoopback, type SessionManagerConfig } from './config.js'
import { BatchedLogLines } from './observability/batched-log-lines.js'
import { createSessionTelemetry } from './observability/session-telemetry.js'
import type { Clock } from './sessions/session-lifecycle.js'
import { loadTransparencySettings, type TransparencySettings } from './transparency/config.js'

export interface RunningSessionManager {
  /** The bound port (useful with PORT=0). */
  port: number
  /** The port of the separate `/metrics` listener, when `CARE_METRICS_PORT` asked for one. */
  metricsPort?: number
  /** Resolves once the store is recovered and the service answers requests. */
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
  /** Checkpoint key and cadence; default: read from the environment (`CARE_CHECKPOINT_*`). */
  transparency?: TransparencySettings
}

/**
 * Starts the session-manager in three steps: open the configured store (`openBackend`), build the
 * app over it, listen. The server listens at once, so /healthz and /readyz answer while the store
 * is being recovered (requests get 503 `not_ready` until then).
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
  // Asynchronous stdout: a line is handed to the kernel without blocking the event loop (a sync
  // write per access-log line stalled every request whenever the reading end of a pipe lagged);
  // lines are gathered for up to 20 ms and written together; what is held is flushed on exit.
  const logger =
    options.logger ??
    pino(
      { level: config.logLevel, base: { service: 'session-manager' } },
      new BatchedLogLines(destination({ dest: 1, sync: false })),
    )
  if (config.tokens.size === 0) {
    logger.warn(
      { host: config.host },
      `no bearer tokens configured: serving ${isLoopback(config.host) ? 'loopback only' : config.host} without authentication`,
    )
  }
  const observability = options.observability ?? loadObservabilityConfig({})
  const tracing = options.tracing ?? startTracing({ service: 'session-manager', env: {} })
  const metrics = createServiceMetrics({ service: 'session-manager' })
  const telemetry = createSessionTelemetry(metrics, tracing)

  let stopRequested = false
  let shuttingDown = false
  let waitingFor: string | undefined
  let backend: Backend | undefined
  const started = performance.now()
  const opening = openBackend(config, {
    logger,
    clock: options.clock,
    stopRequested: () => stopRequested,
    onWaiting: (reason) => {
      waitingFor = reason
    },
    onCommit: telemetry.onCommit,
    lifecycleObserver: telemetry.lifecycle,
    transparency: options.transparency ?? loadTransparencySettings(process.env),
  })
  const ready = opening.then((opened) => {
    backend = opened
    const seconds = (performance.now() - started) / 1000
    telemetry.recovered(seconds)
    telemetry.watchOpenSessions(() => opened.sessions.openSessions())
    if (opened.pool) telemetry.watchPool(() => opened.pool)
    if (opened.storeStatus) telemetry.watchStore(() => opened.storeStatus?.())
    logger.info({ ...opened.facts, ms: Math.round(seconds * 1000) }, 'recovered; ready')
  })
  ready.catch(() => {}) // the caller decides what a failed recovery means
  registerReadiness(
    metrics.registry,
    () => backend !== undefined && !shuttingDown && backend.healthy() && !backend.integrityProblem?.(),
  )

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
    sessions: () => backend?.sessions,
    storageHealthy: () => backend?.healthy() ?? true,
    storageNote: () => backend?.storageNote(),
    integrityProblem: () => backend?.integrityProblem?.(),
    // The embedded store's status; on PostgreSQL with a resumed tree, the background hole check's.
    storeStatus: () =>
      backend?.storeStatus?.() ??
      (backend?.treeHoleCheck ? { tree_hole_check: backend.treeHoleCheck.status } : undefined),
    audit: () => backend?.audit,
    transparency: { log: () => backend?.transparency, dataDir: config.dataDir },
    review: {
      catalog: () => backend?.review,
      audit: () => backend?.audit,
      reviewerTokens: config.reviewerTokens,
      workerLogs: config.reviewWorkerLogs,
      ...(config.pseudonymKeyFile ? { pseudonymKeyFile: config.pseudonymKeyFile } : {}),
    },
    config,
    logger,
    version: options.version,
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
        await backend?.close()
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
