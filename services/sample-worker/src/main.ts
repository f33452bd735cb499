#!/usr/bin/env node
import { resolve } from 'node:path'
import { loadObservabilityConfig, startTracing } from '@care/observability'
import { pino } from 'pino'
import { startWorker } from './server.js'

const logger = pino({ base: { service: 'sample_worker' } })

function portFrom(value: string | undefined): number {
  const port = Number(value ?? '7401')
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be 0-65535, got ${value}`)
  return port
}

/** After the grace period, closing the log and the exporter get this long before a forced exit. */
const CLOSE_BACKSTOP_MS = 5000

try {
  const observability = loadObservabilityConfig(process.env)
  const tracing = startTracing({ service: 'sample-worker' })
  const worker = await startWorker({
    port: portFrom(process.env.PORT),
    host: process.env.HOST ?? '127.0.0.1',
    logPath: resolve(process.env.CARE_WORKER_LOG ?? '.care-data/worker/events.jsonl'),
    logger,
    observability,
    tracing,
    ...(process.env.DOWNSTREAM_URL ? { downstreamUrl: process.env.DOWNSTREAM_URL } : {}),
  })
  logger.info(
    { url: worker.url, downstream: process.env.DOWNSTREAM_URL ?? 'self', metrics_port: worker.metricsPort },
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
  logger.fatal({ err }, 'sample worker failed to start')
  process.exitCode = 1
}
