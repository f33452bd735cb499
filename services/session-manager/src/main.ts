#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { ConfigError, loadConfig } from './config.js'
import { startSessionManager } from './server.js'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
}

try {
  const config = loadConfig(process.env, process.argv.slice(2))
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
  throw error
}
