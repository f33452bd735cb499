import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built service entry point the multi-instance tests run. */
export const MAIN_JS = fileURLToPath(new URL('../../../dist/main.js', import.meta.url))

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

/**
 * Starts `node dist/main.js` with `env` on a free port (PORT=0) and resolves once /readyz says ready.
 *
 * @example
 * const a = await startInstance({ CARE_STORE: 'postgres', DATABASE_URL: url })
 */
export async function startInstance(env: Record<string, string>, timeoutMs = 20_000): Promise<Instance> {
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  let port: number | undefined
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue
      if (output.length < 2000) output.push(line)
      const match = /"port":(\d+)/.exec(line)
      if (port === undefined && match) port = Number(match[1])
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`instance exited (${child.exitCode}):\n${output.join('\n')}`)
    if (port !== undefined) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      )
      if (ready) break
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`instance not ready after ${timeoutMs} ms:\n${output.join('\n')}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const signal = async (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name)
    await exited
  }
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  }
}
