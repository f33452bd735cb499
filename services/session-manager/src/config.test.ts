import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, SESSION_MANAGER_SETTINGS } from './config.js'

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('expected a configuration error')
}

describe('loadConfig validates every setting at start', () => {
  it('names the variable, the value and what is allowed, in one line', () => {
    const cases: [Record<string, string>, string][] = [
      [
        { LOG_LEVEL: 'verbose' },
        'LOG_LEVEL=verbose is not a log level (use one of fatal, error, warn, info, debug, trace, silent).',
      ],
      [
        { CARE_IDLE_TIMEOUT: '0' },
        'CARE_IDLE_TIMEOUT=0 is zero; use a positive duration such as 1500 (milliseconds), 1500ms, 90s, 30m, 24h or 7d.',
      ],
      [
        { CARE_MAX_DURATION: 'soon' },
        'CARE_MAX_DURATION=soon is not a positive duration such as 1500 (milliseconds), 1500ms, 90s, 30m, 24h or 7d.',
      ],
      [
        { CARE_STORE: 'postgres', DATABASE_URL: 'not-a-url' },
        'DATABASE_URL=not-a-url is not a URL (use postgres://user:password@host:5432/database).',
      ],
      [
        { CARE_STORE: 'postgres', DATABASE_URL: 'mysql://db/care' },
        'DATABASE_URL=mysql://db/care is not a postgres:// URL (use postgres://user:password@host:5432/database).',
      ],
      [{ PORT: '99999' }, 'PORT=99999 must be an integer from 0 to 65535.'],
      [{ CARE_LOG_REPAIR: 'yes' }, 'CARE_LOG_REPAIR=yes must be 1 (on) or 0 (off).'],
      [
        { CARE_DB_POOL_SIZE: '0', CARE_STORE: 'postgres', DATABASE_URL: 'postgres://db/care' },
        'CARE_DB_POOL_SIZE=0 must be an integer from 1 to 1000.',
      ],
    ]
    for (const [env, message] of cases) {
      expect(problem(env)).toBe(message)
    }
  })

  it('hides a password in DATABASE_URL when it refuses the URL', () => {
    expect(problem({ CARE_STORE: 'postgres', DATABASE_URL: 'http://care:s3cret@db/care' })).not.toContain(
      's3cret',
    )
  })

  it('accepts bare milliseconds, units, the documented log levels and a socket-directory URL', () => {
    const config = loadConfig({
      CARE_IDLE_TIMEOUT: '1500',
      CARE_MAX_DURATION: '2h',
      LOG_LEVEL: 'warn',
      CARE_LOG_REPAIR: '0',
      CARE_STORE: 'postgres',
      DATABASE_URL: 'postgresql:///care?host=/var/run/postgresql',
    })
    expect(config.policy.idleTimeoutMs).toBe(1500)
    expect(config.policy.maxDurationMs).toBe(7_200_000)
    expect(config.logLevel).toBe('warn')
    expect(config.repair).toBe(false)
  })
})

describe('SESSION_MANAGER_SETTINGS', () => {
  it('lists exactly the variables config.ts reads', async () => {
    const source = await readFile(new URL('./config.ts', import.meta.url), 'utf8')
    const read = new Set([...source.matchAll(/env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]))
    expect([...read].sort()).toEqual(SESSION_MANAGER_SETTINGS.map((s) => s.name).sort())
  })

  it('matches the defaults loadConfig applies', () => {
    const config = loadConfig({})
    const documented = Object.fromEntries(SESSION_MANAGER_SETTINGS.map((s) => [s.name, s.default]))
    expect(documented.PORT).toBe(String(config.port))
    expect(documented.HOST).toBe(config.host)
    expect(documented.LOG_LEVEL).toBe(config.logLevel)
    expect(documented.CARE_LOG_MAX_FILE_BYTES).toBe(String(config.maxLogFileBytes))
    expect(documented.CARE_IDLE_TIMEOUT).toBe('30m')
    expect(config.policy.idleTimeoutMs).toBe(30 * 60_000)
    expect(config.policy.maxDurationMs).toBe(24 * 3_600_000)
    expect(config.policy.retryWindowMs).toBe(24 * 3_600_000)
    expect(config.dataDir.endsWith(documented.CARE_DATA_DIR!.replace(/^\.\//, ''))).toBe(true)
  })
})
