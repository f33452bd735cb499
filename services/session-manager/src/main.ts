#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { loadObservabilityConfig, ObservabilityConfigError, startTracing } from '@care/observability'
import { ConfigError, loadConfig, type SessionManagerConfig } from './config.js'
import { startSessionManager } from './server.js'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
}

/** After the grace period, closing the log and the exporter get this long before a forced exit. */
const CLOSE_BACKSTOP_MS = 5000

let config: SessionManagerConfig | undefined
try {
  config = loadConfig(process.env, process.argv.slice(2))
  const observability = loadObservabilityConfig(process.env)
  const tracing = startTracing({ service: 'session-manager', version })
  const running = await startSessionManager(config, { version, observability, tracing })
  running.ready.catch((error: unknown) => {
    // A corrupt log, a held lock or an unreadable data dir: say so plainly and stop.
    console.error(`session-manager: cannot start: ${(error as Error).message}`)
    void running.stop().finally(() => process.exit(1))
  })
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    setTimeout(() => {
      console.error('session-manager: shutdown did not finish in time; exiting')
      process.exit(1)
    }, observability.shutdownGraceMs + CLOSE_BACKSTOP_MS).unref()
    void running
      .stop()
      .then(() => tracing.shutdown().catch(() => {}))
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(`session-manager: shutdown failed: ${(error as Error).message}`)
          process.exit(1)
        },
      )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
} catch (error) {
  if (error instanceof ConfigError || error instanceof ObservabilityConfigError) {
    console.error(`session-manager: configuration error: ${error.message}`)
    process.exit(2)
  }
  const code = (error as NodeJS.ErrnoException).code
  if (config && (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')) {
    console.error(
      `session-manager: cannot listen on ${config.host}:${config.port}: HOST=${config.host} is not an address of this machine (e.g. 127.0.0.1, ::1 or 0.0.0.0).`,
    )
    process.exit(1)
  }
  if (config && (code === 'EADDRINUSE' || code === 'EACCES')) {
    // One line, not a stack: which address, and the setting that changes it.
    const why = code === 'EADDRINUSE' ? 'is already in use' : 'may not be used by this user'
    console.error(
      `session-manager: cannot listen on ${config.host}:${config.port}: the port ${why}; set PORT to another port (0 picks a free one).`,
    )
    process.exit(1)
  }
  throw error
}
