import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'

/** What {@link useInProcessSessionManager} gives the tests of a file once `beforeAll` has run. */
export interface InProcessSessionManager {
  /** `http://127.0.0.1:<port>` of the running service. */
  readonly url: string
  readonly running: RunningSessionManager
  /** The service's data directory (a fresh temporary directory, removed after the file's tests). */
  readonly dataDir: string
}

/**
 * Starts one session-manager in this process for the tests of a file (in `beforeAll`, on port 0, with
 * the embedded store in a fresh temporary directory and a silent logger) and stops it and removes the
 * directory in `afterAll`. `env` adds configuration variables.
 *
 * @example
 * const service = useInProcessSessionManager('review-routes-', { CARE_REVIEWER_TOKENS: 'token' })
 * it('answers', async () => expect((await fetch(`${service.url}/healthz`)).status).toBe(200))
 */
export function useInProcessSessionManager(
  prefix: string,
  env: Record<string, string> = {},
): InProcessSessionManager {
  const state = {} as { url: string; running: RunningSessionManager; dataDir: string }
  let dir: string | undefined
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix))
    state.dataDir = join(dir, 'data')
    state.running = await startSessionManager(
      loadConfig({ PORT: '0', CARE_DATA_DIR: state.dataDir, ...env }),
      { logger: pino({ level: 'silent' }) },
    )
    await state.running.ready
    state.url = `http://127.0.0.1:${state.running.port}`
  })
  afterAll(async () => {
    await state.running?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })
  return state
}
