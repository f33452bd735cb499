import type { AddressInfo } from 'node:net'
import { answerClientErrorsAsJson } from '@care/session-guard/node'
import type { Logger } from 'pino'
import { createWorkerApp, type WorkerAppOptions } from './app.js'
import { openWorkerEventLog } from './event-log.js'

/**
 * Where and how to run the worker. Without `downstreamUrl` the downstream step is this worker's own
 * `POST /steps/annotate`, at the address it actually listens on (so port 0 works).
 *
 * @example
 * const options: StartWorkerOptions = { port: 0, host: '127.0.0.1', logPath: '/tmp/events.jsonl', logger }
 */
export interface StartWorkerOptions {
  port: number
  host: string
  logPath: string
  logger: Logger
  downstreamUrl?: string
  /** Passed to the app: named in `/healthz`, the guard's verify hook, the OpenAPI version. */
  app?: Pick<WorkerAppOptions, 'instanceId' | 'verify' | 'version'>
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
  close(): Promise<void>
}

/**
 * Opens the event log, builds the app and listens.
 *
 * @example
 * const worker = await startWorker({ port: 7401, host: '127.0.0.1', logPath, logger })
 * logger.info({ url: worker.url }, 'listening')
 */
export async function startWorker({
  port,
  host,
  logPath,
  logger,
  downstreamUrl,
  app: appOptions = {},
}: StartWorkerOptions): Promise<RunningWorker> {
  const eventLog = await openWorkerEventLog(logPath)
  let selfUrl = ''
  const app = createWorkerApp({
    ...appOptions,
    eventLog,
    logger,
    downstreamUrl: () => downstreamUrl ?? `${selfUrl}/steps/annotate`,
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
  const address = server.address() as AddressInfo
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address
  selfUrl = `http://${hostForUrl}:${address.port}`
  return {
    url: selfUrl,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      await eventLog.close()
    },
  }
}
