import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { MAIN_JS, spawnSessionManager, waitReady } from '../../test-support/spawn-session-manager.js'

/**
 * Fails with the build command when `dist/main.js` is missing (the instance tests run the real build).
 *
 * @example
 * assertBuilt()
 */
export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) {
    throw new Error(
      `${MAIN_JS} is missing: build first with \`pnpm turbo run build --filter=@care/session-manager...\``,
    )
  }
}

/** One running session-manager process. */
export interface Instance {
  url: string
  process: ChildProcess
  /** Lines the process wrote (pino JSON), for failure messages. */
  output: string[]
  /** SIGTERM and wait. */
  stop(): Promise<void>
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>
}

/** The environment of an instance on the PostgreSQL store, with a short idle timeout for tests. */
export function postgresInstanceEnv(databaseUrl: string): Record<string, string> {
  return {
    CARE_STORE: 'postgres',
    DATABASE_URL: databaseUrl,
    CARE_DB_OWNER_ROLE: 'care_owner',
    CARE_IDLE_TIMEOUT: '1s',
    CARE_DB_POOL_SIZE: '5',
  }
}

/**
 * Starts the built service with `env` on a free port and resolves once /readyz says ready.
 *
 * @example
 * const a = await startInstance(postgresInstanceEnv(url))
 */
export async function startInstance(env: Record<string, string>, timeoutMs = 20_000): Promise<Instance> {
  const started = await spawnSessionManager(env)
  try {
    await waitReady(started.url, timeoutMs)
  } catch (err) {
    await started.kill('SIGKILL')
    throw new Error(`${(err as Error).message}:\n${started.lines.join('\n')}`)
  }
  return {
    url: started.url,
    process: started.child,
    output: started.lines,
    stop: async () => {
      await started.kill('SIGTERM')
    },
    kill: async () => {
      await started.kill('SIGKILL')
    },
  }
}
