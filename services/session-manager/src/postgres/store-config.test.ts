import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../config.js'

describe('CARE_STORE', () => {
  it('defaults to the embedded JSONL store', () => {
    expect(loadConfig({}).store).toEqual({ kind: 'file' })
  })

  it('selects PostgreSQL with DATABASE_URL, schema, owner role and pool size', () => {
    const config = loadConfig({
      CARE_STORE: 'postgres',
      DATABASE_URL: 'postgres://care_service@db:5432/care',
      CARE_DB_OWNER_ROLE: 'care_owner',
      CARE_DB_POOL_SIZE: '4',
    })
    expect(config.store).toEqual({
      kind: 'postgres',
      url: 'postgres://care_service@db:5432/care',
      schema: 'care_sessions',
      ownerRole: 'care_owner',
      poolSize: 4,
    })
  })

  it('refuses postgres without DATABASE_URL, and an unknown store', () => {
    expect(() => loadConfig({ CARE_STORE: 'postgres' })).toThrow(ConfigError)
    expect(() => loadConfig({ CARE_STORE: 'postgres' })).toThrow(/DATABASE_URL/)
    expect(() => loadConfig({ CARE_STORE: 'redis' })).toThrow(/file or postgres/)
  })
})
