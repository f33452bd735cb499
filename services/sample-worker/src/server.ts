import type { AddressInfo } from 'node:net'
import { EventLog, type LogFileSystem } from '@care/event-log'
import {
  closeGracefully,
  createHttpObserver,
  createServiceMetrics,
  eventLogCommitObserver,
  loadObservabilityConfig,
  type ObservabilityConfig,
  registerReadiness,
  startMetricsServer,
  startTracing,
  type Tracing,
} from '@care/observability'
import { answerClientErrorsAsJson } from '@care/session-guard/node'
import type { Logger } from 'pino'
import { createWorkerApp, type WorkerAppOptions } from './app.js'
import type { WorkerEvent } from './worker-records.js'

/**
 * Where and how to run the worker. Without `downstreamUrl` the downstream step is this worker's own
 * `POST /steps/annotate`, at the address it actually listens on (so port 0 works).
 *
 * @example
 * const options: StartWorkerOptions = { port: 0, host: '127.0.0.1', dataDir: '/tmp/worker', logger }
 */
export interface StartWorkerOptions {
  port: number
  host: string
  /** Data directory of the worker's event log (`<dataDir>/events/*.jsonl`, `<dataDir>/LOCK`). */
  dataDir: string
  logger: Logger
  downstreamUrl?: string
  /** File layer of the event log (tests inject faults here); defaults to the real file system. */
  fs?: LogFileSystem
  /** Passed to the app: named in `/healthz`, the guard's verify hook, the OpenAPI version. */
  app?: Pick<WorkerAppOptions, 'instanceId' | 'verify' | 'version'>
  /** Metrics exposure, access-log sampling and shutdown grace; defaults to `loadObservabilityConfig({})`. */
  observability?: ObservabilityConfig
  /** Tracing as started by `startTracing`; off by default. */
  tracing?: Tracing
}

/**
 * A listening worker: its base URL, and `close()`, which stops accepting connections, lets
 * requests in flight finish (their records included) and then closes the event log.
 *
 * @example
 * const worker = await startWorker(options)
 * process.once('SIGTERM', () => worker.close())
 */
export interface RunningWorker {
  url: string
  /** The port of the separate `/metrics` listener, when `CARE_METRICS_PORT` asked for one. */
  metricsPort?: number
  /**
   * `/readyz` turns 503, no new connections are accepted, requests in flight get the shutdown grace
   * period, then remaining connections are closed and the event log is closed.
   */
  close(): Promise<void>
}

/**
 * Opens the event log (recovering it: a torn tail from a crash is cut, damage stops the start), builds
 * the app and listens.
 *
 * @example
 * const worker = await startWorker({ port: 7401, host: '127.0.0.1', dataDir, logger })
 * logger.info({ url: worker.url }, 'listening')
 */
export async function startWorker({
  port,
  host,
  dataDir,
  logger,
  downstreamUrl,
  fs,
  app: appOptions = {},
  observability = loadObservabilityConfig({}),
  tracing = startTracing({ service: 'sample-worker', env: {} }),
}: StartWorkerOptions): Promise<RunningWorker> {
  const metrics = createServiceMetrics({ service: 'sample-worker' })
  const { log: eventLog } = await EventLog.open<WorkerEvent>({
    dir: dataDir,
    logger,
    // Group-commit batch sizes and fdatasync latency, as the session-manager reports them.
    onCommit: eventLogCommitObserver(metrics.registry),
    ...(fs ? { fs } : {}),
  })
  let selfUrl = ''
  let shuttingDown = false
  registerReadiness(metrics.registry, () => !shuttingDown)
  const app = createWorkerApp({
    ...appOptions,
    eventLog,
    logger,
    downstreamUrl: () => downstreamUrl ?? `${selfUrl}/steps/annotate`,
    observer: createHttpObserver({
      metrics,
      tracing,
      logger,
      accessLogSample: observability.accessLogSample,
    }),
    tracing,
    metrics: { registry: metrics.registry, exposure: observability.metrics, host },
    shuttingDown: () => shuttingDown,
  })
  const server = app.listen(port, host)
  answerClientErrorsAsJson(server)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve)
      server.once('error', reject)
    })
  } catch (err) {
    await eventLog.close()
    throw err
  }
  const metricsServer =
    observability.metrics.kind === 'separate'
      ? await startMetricsServer(metrics.registry, observability.metrics).catch(async (err: unknown) => {
          await new Promise((resolve) => server.close(resolve))
          await eventLog.close()
          throw err
        })
      : undefined
  const address = server.address() as AddressInfo
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address
  selfUrl = `http://${hostForUrl}:${address.port}`
  let closing: Promise<void> | undefined
  return {
    url: selfUrl,
    ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
    close() {
      shuttingDown = true
      closing ??= (async () => {
        const finished = await closeGracefully(server, { graceMs: observability.shutdownGraceMs })
        if (!finished) logger.warn({}, 'shutdown grace period expired; closed the remaining connections')
        await eventLog.close()
        await metricsServer?.close()
      })()
      return closing
    },
  }
}
