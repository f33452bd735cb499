import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const MAIN_JS = fileURLToPath(new URL('../../dist/main.js', import.meta.url))

export interface SpawnedSessionManager {
  url: string
  child: ChildProcess
  /** Every stdout/stderr line so far (JSON logs and plain errors). */
  lines: string[]
  exited: Promise<number | null>
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Runs the built service (`dist/main.js`) as a child process on 127.0.0.1 with a free port and
 * resolves once it is listening (use `waitReady` for recovery). Fails clearly when not built.
 */
export async function spawnSessionManager(env: Record<string, string>): Promise<SpawnedSessionManager> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build @care/session-manager first`)
  const child = spawn(process.execPath, [MAIN_JS], {
    // LOG_LEVEL stays at info: the harness reads the port from the 'listening' line.
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = new Promise<number>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line)
        const match = /"port":(\d+)/.exec(line)
        if (match && line.includes('listening')) resolve(Number(match[1]))
      })
    }
    void exited.then((code) =>
      reject(new Error(`session-manager exited (${code}) before listening:\n${lines.join('\n')}`)),
    )
    setTimeout(
      () => reject(new Error(`session-manager did not log its port within 20 s:\n${lines.join('\n')}`)),
      20_000,
    ).unref()
  })
  const url = `http://127.0.0.1:${await port}`
  return {
    url,
    child,
    lines,
    exited,
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/** Polls /readyz until 200 (bounded). */
export async function waitReady(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`)
}
