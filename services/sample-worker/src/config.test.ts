import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { loadWorkerConfig, SAMPLE_WORKER_SETTINGS, WorkerConfigError } from './config.js'

function problem(env: Record<string, string>): string {
  try {
    loadWorkerConfig(env)
  } catch (err) {
    expect(err).toBeInstanceOf(WorkerConfigError)
    return (err as Error).message
  }
  throw new Error('expected a configuration error')
}

describe('loadWorkerConfig', () => {
  it('works with an empty environment: loopback, port 7401, its own downstream step, no verify hook', () => {
    const config = loadWorkerConfig({})
    expect(config).toMatchObject({ host: '127.0.0.1', port: 7401, logLevel: 'info' })
    expect(config.downstreamUrl).toBeUndefined()
    expect(config.sessionManager).toBeUndefined()
    expect(config.instanceId).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('names the variable, the value and what is allowed in one line for each mistake', () => {
    expect(problem({ DOWNSTREAM_URL: 'garbage' })).toBe(
      'DOWNSTREAM_URL=garbage is not a URL (use e.g. http://127.0.0.1:7401/steps/annotate).',
    )
    expect(problem({ DOWNSTREAM_URL: 'ftp://host/x' })).toBe(
      'DOWNSTREAM_URL=ftp://host/x must be an http:// or https:// URL.',
    )
    expect(problem({ LOG_LEVEL: 'verbose' })).toBe(
      'LOG_LEVEL=verbose is not a log level (use one of fatal, error, warn, info, debug, trace, silent).',
    )
    expect(problem({ PORT: '70000' })).toContain('PORT=70000 must be a port number from 0 to 65535')
    expect(problem({ PORT: 'http' })).toContain('PORT=http must be a port number')
    expect(problem({ SESSION_MANAGER_TOKEN: 'a-token-of-16-chars' })).toContain('SESSION_MANAGER_URL is not')
    for (const message of [problem({ PORT: '-1' }), problem({ SESSION_MANAGER_URL: 'nope' })]) {
      expect(message.split('\n')).toHaveLength(1)
    }
  })

  it('turns the verify hook on with SESSION_MANAGER_URL (trailing slash dropped) and its token', () => {
    const config = loadWorkerConfig({
      SESSION_MANAGER_URL: 'http://127.0.0.1:7400/',
      SESSION_MANAGER_TOKEN: 'auditor-token-0123456789',
      CARE_INSTANCE_ID: 'worker-a',
    })
    expect(config.sessionManager).toEqual({ url: 'http://127.0.0.1:7400', token: 'auditor-token-0123456789' })
    expect(config.instanceId).toBe('worker-a')
  })
})

describe('SAMPLE_WORKER_SETTINGS', () => {
  it('lists exactly the variables config.ts reads (docs/configuration.md is checked against it)', async () => {
    const source = await readFile(new URL('./config.ts', import.meta.url), 'utf8')
    const read = new Set([...source.matchAll(/env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]))
    expect([...read].sort()).toEqual(SAMPLE_WORKER_SETTINGS.map((s) => s.name).sort())
  })
})
