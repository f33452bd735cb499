import { answerClientErrorsAsJson } from '@care/session-guard/node'
import { type ServerType, serve } from '@hono/node-server'
import { type Logger, pino } from 'pino'
import { createSessionManagerApp } from './app.js'
import { type Backend, openBackend } from './backend.js'
import { isLoopback, type SessionManagerConfig } from './config.js'
import type { Clock } from './sessions/session-lifecycle.js'

export interface RunningSessionManager {
  /** The bound port (useful with PORT=0). */
  port: number
  /** Resolves once the log is recovered and the service answers requests. */
  ready: Promise<void>
  /** Graceful stop: refuse new connections, finish in-flight requests, sync, release the lock. */
  stop(): Promise<void>
}

export interface StartOptions {
  logger?: Logger
  clock?: Clock
  version?: string
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
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'session-manager' } })
  if (config.tokens.size === 0) {
    logger.warn(
      { host: config.host },
      `no bearer tokens configured: serving ${isLoopback(config.host) ? 'loopback only' : config.host} without authentication`,
    )
  }
  let stopRequested = false
  let backend: Backend | undefined
  const started = performance.now()
  const opening = openBackend(config, { logger, clock: options.clock, stopRequested: () => stopRequested })
  const ready = opening.then((opened) => {
    backend = opened
    logger.info({ ...opened.facts, ms: Math.round(performance.now() - started) }, 'recovered; ready')
  })
  ready.catch(() => {}) // the caller decides what a failed recovery means

  const app = createSessionManagerApp({
    sessions: () => backend?.sessions,
    storageHealthy: () => backend?.healthy() ?? true,
    audit: () => backend?.audit,
    config,
    logger,
    version: options.version,
  })
  const server = await listen(app.fetch, config.host, config.port)
  const port = (server.address() as { port: number }).port
  logger.info({ host: config.host, port, data_dir: config.dataDir }, 'listening; recovering the event log')

  let stopping: Promise<void> | undefined
  return {
    port,
    ready,
    stop() {
      stopRequested = true
      stopping ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await ready.catch(() => {})
        await backend?.close()
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
