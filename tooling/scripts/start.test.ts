import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'

const START = fileURLToPath(new URL('./start.mjs', import.meta.url))
const DEMO = fileURLToPath(new URL('./demo.mjs', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A plain TCP server on 127.0.0.1 holding a port, as "another process" would. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as { port: number }).port, server }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

interface Run {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

/** Runs a script in its own process group (as a terminal would), so a test can Ctrl-C the group. */
function run(script: string, env: Record<string, string>, shell = false): Run {
  const [command, args] = shell ? ['sh', ['-c', script]] : [process.execPath, [script]]
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let text = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGTERM')
      await exited
    }
  })
  return { child, output: () => text, exited }
}

async function until(condition: () => boolean, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'care-start-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('pnpm start with a taken port', () => {
  for (const [variable, other] of [
    ['SESSION_MANAGER_PORT', 'SAMPLE_WORKER_PORT'],
    ['SAMPLE_WORKER_PORT', 'SESSION_MANAGER_PORT'],
  ] as const) {
    it(`stops with one line naming the port and ${variable}, exit 1, and starts nothing`, async () => {
      const dir = await tempDir()
      const { port } = await occupy()
      const start = run(START, {
        [variable]: String(port),
        [other]: String(await freePort()),
        CARE_DATA_ROOT: dir,
        CARE_RUNNING_FILE: join(dir, 'running.json'),
      })
      expect(await start.exited).toBe(1)
      const lines = start.output().trimEnd().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain(`port ${port} on 127.0.0.1 is already in use`)
      expect(lines[0]).toContain(`${variable}=<port> pnpm start`)
      expect(lines[0]).not.toMatch(/is up|Try: pnpm demo/)
      expect(existsSync(join(dir, 'session-manager'))).toBe(false)
    })
  }
})

describe('each service on a taken port', () => {
  for (const [name, main] of [
    ['session-manager', '../../services/session-manager/dist/main.js'],
    ['sample-worker', '../../services/sample-worker/dist/main.js'],
  ] as const) {
    it(`${name}: one line naming the address and PORT, exit 1, no stack trace`, async () => {
      const dir = await tempDir()
      const { port } = await occupy()
      const service = run(fileURLToPath(new URL(main, import.meta.url)), {
        PORT: String(port),
        CARE_DATA_DIR: join(dir, 'data'),
        CARE_WORKER_DATA_DIR: join(dir, 'worker'),
        LOG_LEVEL: 'error',
      })
      expect(await service.exited).toBe(1)
      expect(service.output()).toBe(
        `${name}: cannot listen on 127.0.0.1:${port}: the port is already in use; set PORT to another port (0 picks a free one).\n`,
      )
    })
  }

  it('a bad setting is one line naming the variable, the value and what is allowed, exit 2', async () => {
    const manager = run(
      fileURLToPath(new URL('../../services/session-manager/dist/main.js', import.meta.url)),
      {
        LOG_LEVEL: 'verbose',
      },
    )
    expect(await manager.exited).toBe(2)
    expect(manager.output()).toBe(
      'session-manager: configuration error: LOG_LEVEL=verbose is not a log level (use one of fatal, error, warn, info, debug, trace, silent).\n',
    )
    const worker = run(fileURLToPath(new URL('../../services/sample-worker/dist/main.js', import.meta.url)), {
      DOWNSTREAM_URL: 'garbage',
    })
    expect(await worker.exited).toBe(2)
    expect(worker.output()).toBe(
      'sample-worker: configuration error: DOWNSTREAM_URL=garbage is not a URL (use e.g. http://127.0.0.1:7401/steps/annotate).\n',
    )
  })
})

describe('pnpm start, pnpm demo and Ctrl-C', () => {
  it('confirms its own instances, records the system for the demo, runs the worker README example, exits 0 on Ctrl-C', async () => {
    const dir = await tempDir()
    const runningFile = join(dir, 'running.json')
    // `pnpm start` runs its script line through sh; the build step is left out here (it is cached
    // work of turbo's). sh must exec node, or Ctrl-C kills sh and pnpm reports ELIFECYCLE.
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string }
    }
    const startLine = pkg.scripts.start.replace(/^turbo run build[^&]*&&\s*/, '')
    expect(startLine).toBe('exec node tooling/scripts/start.mjs')
    const start = run(
      startLine,
      {
        SESSION_MANAGER_PORT: String(await freePort()),
        SAMPLE_WORKER_PORT: String(await freePort()),
        CARE_DATA_ROOT: join(dir, 'data'),
        CARE_RUNNING_FILE: runningFile,
      },
      true,
    )
    await until(() => start.output().includes('Try: pnpm demo'), 'pnpm start to report both services up')
    const running = JSON.parse(await readFile(runningFile, 'utf8'))
    expect(running).toMatchObject({ pid: start.child.pid, data_root: join(dir, 'data') })
    for (const service of [running.session_manager, running.sample_worker]) {
      const health = await (await fetch(`${service.url}/healthz`)).json()
      expect(health).toEqual({ status: 'ok', instance_id: service.instance_id })
    }

    // The review page is up at the printed URL and takes the printed development token.
    expect(start.output()).toContain(`Review sessions: ${running.session_manager.url}/review`)
    const signIn = await fetch(`${running.session_manager.url}/review/sign-in`, {
      method: 'POST',
      headers: { origin: running.session_manager.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: /reviewer token (\S+)\)/.exec(start.output())![1]! }),
      redirect: 'manual',
    })
    expect(signIn.headers.get('location')).toBe('/review/sessions')

    // The demo is given nothing but where the running file is: ports and data come from it.
    const demo = run(DEMO, { CARE_RUNNING_FILE: runningFile })
    expect(await demo.exited).toBe(0)
    expect(demo.output()).toContain(`--data-dir ${join(dir, 'data', 'session-manager')}`)
    expect(demo.output()).toMatch(/session\.end/)
    expect(demo.output()).toContain(`--with ${join(dir, 'data', 'worker')}`)

    // Every data path README.md names exists after pnpm start and pnpm demo (with CARE_DATA_ROOT for ./.care-data).
    const rootReadme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const named = [...rootReadme.matchAll(/`\.care-data\/([^`\s]+)`/g)].map((m) => m[1] ?? '')
    expect(named).toContain('worker/events/events-000001.jsonl')
    for (const path of named) expect(existsSync(join(dir, 'data', path)), `.care-data/${path}`).toBe(true)

    // The sample worker README's example runs as written against this system.
    const readme = await readFile(new URL('../../services/sample-worker/README.md', import.meta.url), 'utf8')
    const example = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n')
    const script = `set -euo pipefail\ncurl() { command curl --fail-with-body -w "\\n" "$@"; }\n${example}`
      .replaceAll('localhost:7400', running.session_manager.url.replace('http://', ''))
      .replaceAll('localhost:7401', running.sample_worker.url.replace('http://', ''))
      .replaceAll('/tmp/care-worker-start.json', join(dir, 'start.json'))
    const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd: ROOT, timeout: 30_000 })
    const answer = JSON.parse(stdout.trimEnd().split('\n').at(-1) ?? '')
    expect(answer).toMatchObject({
      event: 'infer.output',
      output: { label: 'question', annotations: { characters: 29, words: 6, question: true } },
    })

    // Ctrl-C: the terminal signals the whole foreground process group.
    process.kill(-start.child.pid!, 'SIGINT')
    expect(await start.exited).toBe(0)
    expect(start.output()).toContain('[start] stopped')
    expect(existsSync(runningFile)).toBe(false)
    for (const pid of [running.session_manager.pid, running.sample_worker.pid]) {
      expect(() => process.kill(pid, 0)).toThrow()
    }
  })
})

describe('pnpm demo against services that require tokens', () => {
  it('says to set CARE_CALLER_TOKENS when the session-manager answers 401', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'events'))
    const server = createHttpServer((req, res) => {
      if (req.method === 'GET')
        return res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"error":"unauthorized","message":"A valid bearer token is required."}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = String((server.address() as { port: number }).port)
    const demo = run(DEMO, {
      SESSION_MANAGER_PORT: port,
      SAMPLE_WORKER_PORT: port,
      CARE_DATA_DIR: dir,
      CARE_WORKER_DATA_DIR: dir,
      CARE_RUNNING_FILE: join(dir, 'no-running-file.json'),
    })
    expect(await demo.exited).toBe(1)
    expect(demo.output()).toMatch(/401/)
    expect(demo.output()).toContain('CARE_CALLER_TOKENS=<token> pnpm demo')
  })
})
