import {
  type AsyncNodeReader,
  MemoryNodeStore,
  MerkleTree,
  signCheckpoint,
  TreeProofs,
  verifyInclusion,
} from '@care/tlog'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createErrorHandler } from '../http/errors.js'
import type { SessionManagerEnv } from '../http/http-env.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { verifyProvenExport } from './proven-export.js'
import { registerTransparencyRoutes } from './routes.js'
import { noteKeys } from './test-support/note-keys.js'
import type { TransparencyLog } from './transparency-log.js'

const ORIGIN = 'care.example/routes'
const SESSION = '01HZZZZZZZZZZZZZZZZZZZZZZZ'
const key = noteKeys(ORIGIN)

/**
 * The transparency routes over a 10-leaf tree whose proofs come from a table-like store the test can
 * damage, cut or break (`fault`), with the newest checkpoint at size 8; what was logged is kept.
 */
function fixture() {
  const lines = Array.from({ length: 10 }, (_, i) =>
    Buffer.from(JSON.stringify({ seq: i + 1, session_id: i % 3 === 0 ? SESSION : `other-${i}` })),
  )
  const store = new MemoryNodeStore()
  const tree = new MerkleTree(store)
  for (const line of lines) tree.append(line)
  const stored = new Map<string, Buffer>()
  for (let level = 0; level < 4; level++) {
    for (let index = 0; index < 10 >> level; index++)
      stored.set(`${level}/${index}`, store.node(level, index))
  }
  const state = { fault: undefined as Error | undefined, forgotten: 0 }
  const reader: AsyncNodeReader = {
    async readNodes(keys) {
      if (state.fault) throw state.fault
      return keys.map((k) => {
        const hash = stored.get(`${k.level}/${k.index}`)
        if (hash === undefined) throw new RangeError(`no hash at level ${k.level}, index ${k.index}`)
        return hash
      })
    },
    forget: () => {
      state.forgotten++
    },
  }
  const note = signCheckpoint({ origin: ORIGIN, size: 8, rootHash: tree.root(8) }, [key.signer])
  const tlog = {
    size: 10,
    tree,
    latestCheckpoint: { size: 8, note },
    proofs: new TreeProofs(reader),
    async *leaves() {
      yield* lines
    },
  } as unknown as TransparencyLog
  const logged: { o: object; m: string }[] = []
  const logger = {
    error: (o: object, m: string) => logged.push({ o, m }),
    warn: (o: object, m: string) => logged.push({ o, m }),
  }
  const app = new Hono<SessionManagerEnv>()
  registerTransparencyRoutes(app, {
    transparency: () => tlog,
    dataDir: '/nonexistent',
    auditor: async (_c, next) => next(),
    logger,
  })
  app.onError(createErrorHandler(logger))
  const get = async (path: string) => {
    const res = await app.request(path)
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  return { tree, stored, state, logged, get, note, tlog }
}

describe('transparency routes over stored hashes that are missing, damaged or unreachable', () => {
  it('checks inclusion and consistency proofs at the current size and the newest checkpoint against their roots: a damaged hash is a 503, not a wrong proof', async () => {
    const { tree, stored, state, get } = fixture()
    expect((await get('/proofs/inclusion?seq=4&size=10')).status).toBe(200)
    const good = stored.get('0/2')!
    stored.set('0/2', Buffer.alloc(32, 7))
    for (const path of [
      '/proofs/inclusion?seq=4&size=10',
      '/proofs/inclusion?seq=4&size=8',
      '/proofs/inclusion?seq=4',
      '/proofs/inclusion?seq=3&size=10',
      '/proofs/consistency?from=3&to=10',
      '/proofs/consistency?from=3&to=8',
    ]) {
      const res = await get(path)
      expect(res.status, path).toBe(503)
      expect(res.body, path).toMatchObject({ error: 'upstream_unavailable' })
    }
    // Each failed check dropped what the reader kept.
    expect(state.forgotten).toBe(6)
    stored.set('0/2', good)
    const served = await get('/proofs/inclusion?seq=4&size=10')
    expect(served.status).toBe(200)
    const proof = (served.body.inclusion_proof as string[]).map((h) => Buffer.from(h, 'base64'))
    expect(() => verifyInclusion(3, 10, tree.leafHash(3), proof, tree.root())).not.toThrow()
    expect((await get('/proofs/consistency?from=3&to=10')).status).toBe(200)
  })

  it('GET /proofs/export answers 503 for a missing and for a damaged hash (not a 500, not a proof that does not verify)', async () => {
    const { stored, get, logged } = fixture()
    const ok = await get(`/proofs/export?session_id=${SESSION}`)
    expect(ok.status).toBe(200)
    expect(verifyProvenExport(ok.body, [key.verifier])).toMatchObject({ size: 8, records: 3 })
    const good = stored.get('0/2')!
    stored.delete('0/2')
    const missing = await get(`/proofs/export?session_id=${SESSION}`)
    expect(missing).toMatchObject({ status: 503, body: { error: 'upstream_unavailable' } })
    stored.set('0/2', Buffer.alloc(32, 7))
    const damaged = await get(`/proofs/export?session_id=${SESSION}`)
    expect(damaged).toMatchObject({ status: 503, body: { error: 'upstream_unavailable' } })
    stored.set('0/2', good)
    expect((await get(`/proofs/export?session_id=${SESSION}`)).status).toBe(200)
    expect(logged.map((l) => l.m)).not.toContain('unhandled error')
  })

  it('maps only a missing hash, a mismatch and an unreachable database to 503 (logged); a bug is a 500', async () => {
    const { state, get, logged } = fixture()
    state.fault = new StoreUnavailableError('database: Connection terminated', 'PG_ECONNRESET')
    expect(await get('/proofs/inclusion?seq=4&size=10')).toMatchObject({ status: 503 })
    expect(await get(`/proofs/export?session_id=${SESSION}`)).toMatchObject({ status: 503 })
    expect(logged).toHaveLength(2)
    expect(logged[0]!.m).toMatch(/stored hashes could not be read/)
    expect((logged[0]!.o as { err: Error }).err).toBe(state.fault)
    // The leaves read for a proven export (the rows, on PostgreSQL) unreachable: a 503 too.
    const leavesDown = fixture()
    const down = new StoreUnavailableError('database: Connection terminated', 'PG_ECONNRESET')
    Object.assign(leavesDown.tlog, {
      // biome-ignore lint/correctness/useYield: the read fails before the first line
      async *leaves() {
        throw down
      },
    })
    expect(await leavesDown.get(`/proofs/export?session_id=${SESSION}`)).toMatchObject({ status: 503 })
    expect((leavesDown.logged[0]!.o as { err: Error }).err).toBe(down)
    state.fault = new TypeError("Cannot read properties of undefined (reading 'hash')")
    for (const path of [
      '/proofs/inclusion?seq=4&size=10',
      '/proofs/consistency?from=3&to=10',
      `/proofs/export?session_id=${SESSION}`,
    ]) {
      expect(await get(path), path).toMatchObject({ status: 500, body: { error: 'internal_error' } })
    }
    expect(logged.slice(2).map((l) => l.m)).toEqual(['unhandled error', 'unhandled error', 'unhandled error'])
  })
})
