#!/usr/bin/env node
import { resolve } from 'node:path'
import { pino } from 'pino'
import { startWorker } from './server.js'

const logger = pino({ base: { service: 'sample_worker' } })

function portFrom(value: string | undefined): number {
  const port = Number(value ?? '7401')
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be 0-65535, got ${value}`)
  return port
}

const SHUTDOWN_GRACE_MS = 10_000

try {
  const worker = await startWorker({
    port: portFrom(process.env.PORT),
    host: process.env.HOST ?? '127.0.0.1',
    dataDir: resolve(process.env.CARE_WORKER_DATA_DIR ?? '.care-data/worker'),
    logger,
    ...(process.env.DOWNSTREAM_URL ? { downstreamUrl: process.env.DOWNSTREAM_URL } : {}),
  })
  logger.info(
    { url: worker.url, downstream: process.env.DOWNSTREAM_URL ?? 'self' },
    'sample worker listening',
  )

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down: finishing requests in flight')
    // A request stuck on a slow client must not keep the process alive forever.
    setTimeout(() => {
      logger.error('shutdown grace period expired')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS).unref()
    worker.close().then(
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
