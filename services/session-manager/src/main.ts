#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { ConfigError, loadConfig, type SessionManagerConfig } from './config.js'
import { startSessionManager } from './server.js'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
}

let config: SessionManagerConfig | undefined
try {
  config = loadConfig(process.env, process.argv.slice(2))
  const running = await startSessionManager(config, { version })
  running.ready.catch((error: unknown) => {
    // A corrupt log, a held lock or an unreadable data dir: say so plainly and stop.
    console.error(`session-manager: cannot start: ${(error as Error).message}`)
    void running.stop().finally(() => process.exit(1))
  })
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void running.stop().then(() => process.exit(0))
    })
  }
} catch (error) {
  if (error instanceof ConfigError) {
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
