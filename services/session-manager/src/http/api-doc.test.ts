import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const API_DOC = join(ROOT, 'docs/api.md')

let dir: string
let running: RunningSessionManager

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-doc-'))
  running = await startSessionManager(loadConfig({ PORT: '0', CARE_DATA_DIR: join(dir, 'data') }), {
    logger: pino({ level: 'silent' }),
  })
  await running.ready
})
afterAll(async () => {
  await running.stop()
  await rm(dir, { recursive: true, force: true })
})

/** The ```sh blocks of the "## Examples" section, in order. */
async function documentedExamples(): Promise<string[]> {
  const text = await readFile(API_DOC, 'utf8')
  const section = text.slice(text.indexOf('## Examples'))
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '')
}

describe('docs/api.md examples', () => {
  it('run as written against a live service, every request answered 2xx', async () => {
    const blocks = await documentedExamples()
    expect(blocks.length).toBeGreaterThanOrEqual(5)
    const script = [
      'set -euo pipefail',
      // Any non-2xx answer fails the script (the docs use plain `curl -s`).
      'curl() { command curl --fail-with-body -w "\\n" "$@"; }',
      'echo',
      ...blocks.map((block) => `${block}\necho`),
    ]
      .join('\n')
      // The only changes: this test's port, and a scratch file of its own.
      .replaceAll('localhost:7400', `127.0.0.1:${running.port}`)
      .replaceAll('/tmp/care-start.json', join(dir, 'care-start.json'))
    const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd: ROOT, timeout: 60_000 })
    const answers = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const kinds = answers.map((a) => a.event ?? a.status ?? Object.keys(a)[0])
    expect(kinds).toEqual([
      'session.start', // start: the recorded event
      'session.touch', // touch
      'open', // GET /sessions/{id}
      'session_id', // timeline, first page
      'session_id', // timeline, second (last) page
      'session.end', // end
      'session.start', // export: the session's events...
      'session.touch',
      'session.end',
      'manifest', // ...and the manifest last
      'ok', // healthz
      'ready', // readyz
    ])
    const sessionId = answers[0]!.session_id
    expect(answers.slice(1, 6).every((a) => a.session_id === sessionId)).toBe(true)
    expect(answers[3]).toMatchObject({ next_cursor: '1' })
    expect(answers[4]).toMatchObject({ next_cursor: null })
  })
})
