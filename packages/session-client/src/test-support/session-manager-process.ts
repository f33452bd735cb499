import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const MAIN_JS = fileURLToPath(new URL('../../../../services/session-manager/dist/main.js', import.meta.url))

export const CALLER_TOKEN = 'caller-token-0123456789'
export const AUDITOR_TOKEN = 'auditor-token-0123456789'

export interface SessionManagerProcess {
  url: string
  /** SIGKILLs the process (nothing graceful: acknowledged events must already be on disk). */
  kill(): Promise<void>
}

/**
 * The real session-manager (its built `dist/main.js`) on 127.0.0.1, a free port and `dataDir`,
 * with one caller and one auditor token. Resolves once it logs its port (recovery may still run).
 */
export async function runSessionManager(dataDir: string): Promise<SessionManagerProcess> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build @care/session-manager first`)
  const child: ChildProcess = spawn(process.execPath, [MAIN_JS], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      CARE_DATA_DIR: dataDir,
      CARE_CALLER_TOKENS: CALLER_TOKEN,
      CARE_AUDITOR_TOKENS: AUDITOR_TOKEN,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line)
        const match = /"port":(\d+)/.exec(line)
        if (match && line.includes('listening')) resolve(Number(match[1]))
      })
    }
    void exited.then(() => reject(new Error(`session-manager exited before listening:\n${lines.join('\n')}`)))
    setTimeout(() => reject(new Error(`no port within 20 s:\n${lines.join('\n')}`)), 20_000).unref()
  })
  return {
    url: `http://127.0.0.1:${port}`,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

/** A fresh data directory, removed by the returned function. */
export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'care-session-client-'))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Polls /readyz until 200 (bounded). */
export async function waitReady(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`)
}
