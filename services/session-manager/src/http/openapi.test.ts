import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ulid } from 'ulid'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessionManagerApp } from '../app.js'
import { spawnSessionManager, waitReady } from '../test-support/spawn-session-manager.js'
import { buildOpenApiDocument } from './openapi.js'

const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url))
const DIST_DOCUMENT = join(PACKAGE_DIR, 'dist/openapi.json')
const BIN = (name: string) => join(PACKAGE_DIR, 'node_modules/.bin', name)
const scratch = mkdtempSync(join(tmpdir(), 'care-openapi-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function run(command: string, args: string[], cwd = PACKAGE_DIR) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
  })
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}` }
}

describe('the OpenAPI document', () => {
  it('is written to dist/openapi.json at build, identical to what GET /openapi.json serves', () => {
    const { version } = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      version: string
    }
    expect(JSON.parse(readFileSync(DIST_DOCUMENT, 'utf8'))).toEqual(buildOpenApiDocument(version))
    const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      files: string[]
    }
    expect(manifest.files).toContain('dist')
  })

  it('has 0 errors under `redocly lint` with the recommended rules', () => {
    const lint = run(BIN('redocly'), ['lint', DIST_DOCUMENT, '--extends', 'recommended', '--format', 'json'])
    const report = JSON.parse(lint.stdout) as {
      totals: { errors: number; warnings: number }
      problems: { ruleId: string; severity: string }[]
    }
    expect(report.problems.filter((p) => p.severity === 'error')).toEqual([])
    expect(report.totals.errors).toBe(0)
    expect(lint.status).toBe(0)
  })

  it('gives every operation an operationId, tags, a description and security (none for health)', () => {
    const document = buildOpenApiDocument('1.0.0') as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; security?: unknown[] }>>
    }
    const ids = new Set<string>()
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const operation of Object.values(operations)) {
        expect(operation.operationId, path).toBeTruthy()
        ids.add(operation.operationId!)
        expect(operation.tags?.length, path).toBeGreaterThan(0)
        expect(operation.security, path).toBeDefined()
      }
    }
    expect(ids.size).toBe(9)
    for (const path of ['/healthz', '/readyz', '/openapi.json'])
      expect(document.paths[path]?.get?.security).toEqual([])
  })
})

describe('wrong methods', () => {
  const app = createSessionManagerApp({
    sessions: () => undefined,
    config: { tokens: new Map(), bodyLimitBytes: 16 * 1024 },
    logger: { error() {} },
  })

  it('get 405 method_not_allowed with Allow on documented routes, and 404 elsewhere', async () => {
    const start = await app.request('/sessions.start')
    expect(start.status).toBe(405)
    expect(start.headers.get('allow')).toBe('POST')
    expect(await start.json()).toMatchObject({ error: 'method_not_allowed' })
    const session = await app.request('/sessions/01JNC3G8Z9X7W6V5T4S3R2Q1P0', { method: 'DELETE' })
    expect(session.status).toBe(405)
    expect(session.headers.get('allow')).toBe('GET, HEAD')
    const nowhere = await app.request('/sessions.pause', { method: 'POST' })
    expect(nowhere.status).toBe(404)
    expect(nowhere.headers.get('allow')).toBeNull()
  })
})

describe('a client generated from the document with openapi-typescript', () => {
  it('compiles with tsc and starts, reads and pages a session on a live service', async () => {
    const generated = run(BIN('openapi-typescript'), [DIST_DOCUMENT, '-o', join(scratch, 'api.ts')])
    expect(generated.status, generated.output).toBe(0)
    writeFileSync(
      join(scratch, 'client.ts'),
      `import type { paths } from './api.js'
type StartBody = paths['/sessions.start']['post']['requestBody']['content']['application/json']
type Started = paths['/sessions.start']['post']['responses']['201']['content']['application/json']
type Summary = paths['/sessions/{session_id}']['get']['responses']['200']['content']['application/json']
type Page = paths['/sessions/{session_id}/timeline']['get']['responses']['200']['content']['application/json']
type PageQuery = NonNullable<paths['/sessions/{session_id}/timeline']['get']['parameters']['query']>

export async function play(base: string, caller: string, auditor: string, recordId: string) {
  const body: StartBody = {
    schema_version: '1.1', record_id: recordId, user_id: 'user-42',
    timestamp: new Date().toISOString(), source: 'ui', origin: 'human', performer_id: 'caregiver-7',
  }
  const res = await fetch(base + '/sessions.start', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + caller },
    body: JSON.stringify(body),
  })
  const started = (await res.json()) as Started
  const id: string = started.session_id
  const auth = { authorization: 'Bearer ' + auditor }
  const summary = (await (await fetch(base + '/sessions/' + id, { headers: auth })).json()) as Summary
  const status: 'open' | 'ended' = summary.status
  const query: PageQuery = { cursor: '0', limit: 1 }
  const page = (await (await fetch(base + '/sessions/' + id + '/timeline?cursor=' + query.cursor + '&limit=' + query.limit, { headers: auth })).json()) as Page
  if (!page.events) throw new Error(JSON.stringify(page))
  const first = page.events[0]
  return { httpStatus: res.status, id, status, count: summary.event_count, event: first?.event, next: page.next_cursor }
}
`,
    )
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          strict: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: true,
          types: [],
          outDir: 'out',
        },
        files: ['api.ts', 'client.ts'],
      }),
    )
    writeFileSync(join(scratch, 'package.json'), '{"type":"module"}')
    const compiled = run(BIN('tsc'), ['-p', join(scratch, 'tsconfig.json')], scratch)
    expect(compiled.status, compiled.output).toBe(0)

    const dataDir = join(scratch, 'data')
    const service = await spawnSessionManager({
      CARE_DATA_DIR: dataDir,
      CARE_CALLER_TOKENS: 'caller-token-0123456789',
      CARE_AUDITOR_TOKENS: 'auditor-token-0123456789',
    })
    try {
      await waitReady(service.url)
      const client = (await import(pathToFileURL(join(scratch, 'out/client.js')).href)) as {
        play(
          base: string,
          caller: string,
          auditor: string,
          recordId: string,
        ): Promise<Record<string, unknown>>
      }
      const result = await client.play(
        service.url,
        'caller-token-0123456789',
        'auditor-token-0123456789',
        ulid(),
      )
      expect(result).toMatchObject({
        httpStatus: 201,
        status: 'open',
        count: 1,
        event: 'session.start',
        next: null,
      })
      expect(result.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
    } finally {
      await service.kill()
    }
  })
})
