#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { loadObservabilityConfig, startTracing } from '@care/observability'
import { pino } from 'pino'
import { loadWorkerConfig, type WorkerConfig, WorkerConfigError } from './config.js'
import { startWorker } from './server.js'
import { createSessionVerifier } from './session-verifier.js'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
}

let config: WorkerConfig
try {
  config = loadWorkerConfig(process.env)
} catch (err) {
  if (!(err instanceof WorkerConfigError)) throw err
  console.error(`sample-worker: configuration error: ${err.message}`)
  process.exit(2)
}
const logger = pino({ level: config.logLevel, base: { service: 'sample_worker' } })

/** After the grace period, closing the log and the exporter get this long before a forced exit. */
const CLOSE_BACKSTOP_MS = 5000

try {
  const observability = loadObservabilityConfig(process.env)
  const tracing = startTracing({ service: 'sample-worker' })
  const worker = await startWorker({
    port: config.port,
    host: config.host,
    dataDir: config.dataDir,
    logger,
    observability,
    tracing,
    ...(config.downstreamUrl ? { downstreamUrl: config.downstreamUrl } : {}),
    app: {
      instanceId: config.instanceId,
      version,
      ...(config.sessionManager
        ? {
            verify: createSessionVerifier({
              sessionManagerUrl: config.sessionManager.url,
              ...(config.sessionManager.token ? { token: config.sessionManager.token } : {}),
            }),
          }
        : {}),
    },
  })
  logger.info(
    {
      url: worker.url,
      downstream: config.downstreamUrl ?? 'self',
      verify_sessions: config.sessionManager?.url ?? 'off',
      metrics_port: worker.metricsPort,
    },
    'sample worker listening',
  )

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    logger.info(
      { signal, grace_ms: observability.shutdownGraceMs },
      'shutting down: finishing requests in flight',
    )
    // Closing the log and the exporter after the grace period must not hang either.
    setTimeout(() => {
      logger.error('shutdown did not finish in time')
      process.exit(1)
    }, observability.shutdownGraceMs + CLOSE_BACKSTOP_MS).unref()
    worker
      .close()
      .then(() => tracing.shutdown().catch(() => {}))
      .then(
        () => {
          logger.info('stopped')
          process.exit(0)
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed')
          process.exit(1)
        },
      )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    console.error(
      `sample-worker: cannot listen on ${config.host}:${config.port}: HOST=${config.host} is not an address of this machine (e.g. 127.0.0.1, ::1 or 0.0.0.0).`,
    )
  } else if (code === 'EADDRINUSE' || code === 'EACCES') {
    // One line, not a stack: which address, and the setting that changes it.
    const why = code === 'EADDRINUSE' ? 'is already in use' : 'may not be used by this user'
    console.error(
      `sample-worker: cannot listen on ${config.host}:${config.port}: the port ${why}; set PORT to another port (0 picks a free one).`,
    )
  } else {
    logger.fatal({ err }, 'sample worker failed to start')
  }
  process.exitCode = 1
}
