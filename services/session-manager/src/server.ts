import { answerClientErrorsAsJson } from '@care/session-guard/node'
import { type ServerType, serve } from '@hono/node-server'
import { type Logger, pino } from 'pino'
import { createSessionManagerApp } from './app.js'
import { logAuditSource, storeAuditSource } from './audit/audit-source.js'
import { isLoopback, type SessionManagerConfig } from './config.js'
import { createIdFactory } from './ids/id-factory.js'
import type { LogPosition } from './log/index.js'
import { PostgresEventStore } from './postgres/postgres-event-store.js'
import { PostgresSessionService } from './postgres/postgres-session-service.js'
import type { SessionLifecycle } from './sessions/session-lifecycle.js'
import { type Clock, SessionService } from './sessions/session-service.js'
import { StoreUnavailableError } from './store/event-store.js'
import { FileEventStore } from './store/file-event-store.js'
import { loadTransparencySettings, type TransparencySettings } from './transparency/config.js'
import { TransparencyLog } from './transparency/transparency-log.js'

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
  /** Checkpoint key and cadence; default: read from the environment (`CARE_CHECKPOINT_*`). */
  transparency?: TransparencySettings
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
  let transparency: TransparencyLog | undefined
  let transparencyReady: TransparencyLog | undefined
  const transparencySettings = options.transparency ?? loadTransparencySettings(process.env)
  const app = createSessionManagerApp({
    sessions: () => service,
    storageHealthy: () => store?.healthy ?? true,
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
    transparency: { log: () => transparencyReady, dataDir: config.dataDir },
  })
  const server = await listen(app.fetch, config.host, config.port)
  const port = (server.address() as { port: number }).port
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
          logger.warn({ err: error }, 'database unavailable; retrying in 1 s')
          await new Promise((resolve) => setTimeout(resolve, 1000))
        }
      }
      databaseEvents = PostgresEventStore.over(live.pool, storeConfig.schema)
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
    if (transparencySettings.enabled !== false) {
      transparency = TransparencyLog.open({ dataDir: config.dataDir, ...transparencySettings, logger })
    }
    const observer = transparency?.observer
    await live.recover(async (apply) => {
      store = await FileEventStore.open(
        {
          dir: config.dataDir,
          repair: config.repair,
          maxFileBytes: config.maxLogFileBytes,
          logger,
          observer,
        },
        (event, ref) => {
          apply(event, ref)
          events++
        },
      )
      await transparency?.finishRecovery(store.head().seq)
      return store
    })
    transparencyReady = transparency
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
    ready,
    stop() {
      stopRequested = true
      stopping ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await ready.catch(() => {})
        await service?.close()
        await transparency?.close()
        await store?.close()
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
