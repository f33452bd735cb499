// Where `pnpm start` records the running system (ports, data root, pids, instance ids) and where
// `pnpm demo` reads it, so the demo needs no settings of its own. One rule for both scripts.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')

/** `CARE_RUNNING_FILE`, else `<repo>/.care-running.json`. */
export function runningFilePath(env = process.env) {
  return resolve(ROOT, env.CARE_RUNNING_FILE?.trim() || '.care-running.json')
}

/** The recorded system if its `pnpm start` process is still alive, else undefined. */
export function readRunningSystem(env = process.env) {
  let running
  try {
    running = JSON.parse(readFileSync(runningFilePath(env), 'utf8'))
  } catch {
    return undefined
  }
  try {
    process.kill(running.pid, 0)
  } catch {
    return undefined // left behind by a start that was killed hard
  }
  return running
}
