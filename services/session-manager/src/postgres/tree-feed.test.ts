import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { StoreUnavailableError } from '../store/event-store.js'
import type { TransparencyLog } from '../transparency/transparency-log.js'
import { schemaNames } from './schema-names.js'
import { PostgresTreeFeed, PostgresTreeStorage } from './tree-feed.js'
import { readTreeNodes, TableNodeStore, type TreeTableDb } from './tree-table.js'

const t = schemaNames()

/** A connection that is cut: every query rejects the way `pg` does. */
const cut: TreeTableDb = {
  query: async () => {
    throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
  },
}

describe('the PostgreSQL tree over an unreachable database', () => {
  it('a read of stored hashes rejects with StoreUnavailableError (a 503, waited for at a start), not as a missing hash', async () => {
    await expect(readTreeNodes(cut, t, [{ level: 0, index: 3 }])).rejects.toBeInstanceOf(
      StoreUnavailableError,
    )
    await expect(new TableNodeStore(cut, t).readNodes([{ level: 2, index: 0 }])).rejects.toThrow(
      /database: Connection terminated unexpectedly/,
    )
  })

  it('a database error while the start finishes recovery (the newest checkpoint checked against stored hashes) is waited for like the other start errors', async () => {
    // An empty table: the watermark is 0, so the feed reads no row and goes straight to finishRecovery.
    const pool = {
      query: async () => ({ rows: [{ high: '0' }] }),
    } as unknown as pg.Pool
    const tlog = {
      observer: { recovered() {} },
      finishRecovery: async () => {
        await readTreeNodes(cut, t, [{ level: 0, index: 0 }])
      },
    } as unknown as TransparencyLog
    const started = PostgresTreeFeed.start({
      pool,
      names: t,
      tlog,
      storage: new PostgresTreeStorage(pool, t),
      pollMs: 60_000,
    })
    await expect(started).rejects.toBeInstanceOf(StoreUnavailableError)
    // Whatever else fails there is waited for too (a start retries every second and checks again).
    const failing = {
      observer: { recovered() {} },
      finishRecovery: async () => {
        throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })
      },
    } as unknown as TransparencyLog
    await expect(
      PostgresTreeFeed.start({ pool, names: t, tlog: failing, storage: new PostgresTreeStorage(pool, t) }),
    ).rejects.toMatchObject({ name: 'StoreUnavailableError', message: /statement timeout/ })
  })
})
