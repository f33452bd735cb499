import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backend, openBackend } from '../backend.js'
import { loadConfig } from '../config.js'
import {
  createServiceDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../postgres/test-support/postgres-server.js'
import { endInputAt, MINUTE, startInputAt } from '../sessions/test-support/inputs.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'

// The review catalog's behaviour, once per store: the embedded log (through its key lookups) and
// PostgreSQL (through SQL on a real server started here).
let server: TestPostgres
beforeAll(async () => {
  server = await startTestPostgres()
}, 60_000)
afterAll(async () => {
  await server?.destroy()
}, 30_000)

const stores = [
  { name: 'embedded log', env: async (dir: string) => ({ CARE_DATA_DIR: dir }) },
  {
    name: 'PostgreSQL',
    env: async (dir: string) => ({
      CARE_DATA_DIR: dir,
      CARE_STORE: 'postgres',
      DATABASE_URL: await createServiceDatabase(server),
      CARE_DB_OWNER_ROLE: 'care_owner',
    }),
  },
]

describe.each(stores)('the review catalog on the $name', ({ env }) => {
  let backend: Backend
  let dir: string
  const clock = new ManualClock()
  const t0 = clock.now()
  const ids: string[] = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'care-review-catalog-'))
    backend = await openBackend(loadConfig(await env(dir)), { clock })
    const { sessions } = backend
    // user-a: three sessions a minute apart (the first ended explicitly); user-b: one, started by the system.
    for (let i = 0; i < 3; i++) {
      ids.push((await sessions.start(startInputAt(clock.now(), { user_id: 'user-a' }))).output.session_id)
      clock.advance(MINUTE)
    }
    ids.push(
      (
        await sessions.start(
          startInputAt(clock.now(), { user_id: 'user-b', origin: 'system', performer_id: undefined }),
        )
      ).output.session_id,
    )
    clock.advance(MINUTE)
    await sessions.touch(endInputAt(clock.now(), ids[0]!, { user_id: 'user-a' }))
    clock.advance(MINUTE)
    await sessions.end(endInputAt(clock.now(), ids[0]!, { user_id: 'user-a' }))
  }, 60_000)

  afterAll(async () => {
    await backend?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("pages a user's sessions newest first, each row summarising the session", async () => {
    const first = await backend.review.findSessions({ userId: 'user-a', limit: 2 })
    expect(first.rows.map((r) => r.session_id)).toEqual([ids[2], ids[1]])
    expect(first.nextCursor).toBeDefined()
    const second = await backend.review.findSessions({
      userId: 'user-a',
      limit: 2,
      cursor: first.nextCursor!,
    })
    expect(second.rows.map((r) => r.session_id)).toEqual([ids[0]])
    expect(second.nextCursor).toBeUndefined()
    expect(second.rows[0]).toEqual({
      session_id: ids[0],
      user_id: 'user-a',
      start: t0,
      end: t0 + 5 * MINUTE,
      duration_ms: 5 * MINUTE,
      end_reason: 'explicit',
      performer: 'caregiver-1',
      event_count: 3,
      open: false,
    })
    expect(first.rows[0]).toMatchObject({ open: true, event_count: 1 })
    expect(first.rows[0]!.end).toBeUndefined()
  })

  it('finds by session id, by end reason and by a date range of starts, and combines filters', async () => {
    const byId = await backend.review.findSessions({ sessionId: ids[3]!, limit: 10 })
    expect(byId.rows).toMatchObject([{ user_id: 'user-b', performer: 'system', open: true }])
    const ended = await backend.review.findSessions({ endReason: 'explicit', limit: 10 })
    expect(ended.rows.map((r) => r.session_id)).toEqual([ids[0]])
    const range = await backend.review.findSessions({ from: t0 + MINUTE, to: t0 + 3 * MINUTE, limit: 10 })
    expect(range.rows.map((r) => r.session_id)).toEqual([ids[2], ids[1]])
    const all = await backend.review.findSessions({ limit: 10 })
    expect(all.rows.map((r) => r.session_id)).toEqual([...ids].reverse())
    expect(
      (await backend.review.findSessions({ userId: 'user-b', endReason: 'explicit', limit: 10 })).rows,
    ).toEqual([])
    expect((await backend.review.findSessions({ userId: 'nobody', limit: 10 })).rows).toEqual([])
  })

  it("reads a session's lifecycle events in order, and none for an unknown id", async () => {
    const events = await backend.review.sessionEvents(ids[0]!)
    expect(events.map((e) => e.event)).toEqual(['session.start', 'session.touch', 'session.end'])
    expect(await backend.review.sessionEvents('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toEqual([])
  })
})
