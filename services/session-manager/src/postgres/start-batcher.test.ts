import type pg from 'pg'
import { ulid } from 'ulid'
import { describe, expect, it } from 'vitest'
import { requestDigest, startEvent } from '../sessions/lifecycle-events.js'
import { startInputAt, TEST_POLICY } from '../sessions/test-support/inputs.js'
import { chainEvent, GENESIS_HASH } from './event-chain.js'
import { schemaNames } from './schema-names.js'
import {
  batchJson,
  DEFAULT_START_BATCHES,
  type PendingStart,
  StartBatcher,
  unstorableField,
} from './start-batcher.js'

/** A pool whose statements stay in flight until the test settles them; every start is "inserted". */
function scriptedPool() {
  const statements: { sessionIds: string[]; settle(): void }[] = []
  const pool = {
    query(config: { values: unknown[] }) {
      const sessionIds = (JSON.parse(config.values[0] as string) as { session_id: string }[]).map(
        (row) => row.session_id,
      )
      return new Promise((resolve) => {
        statements.push({
          sessionIds,
          settle: () => resolve({ rows: sessionIds.map((sessionId) => [sessionId]) }),
        })
      })
    },
  }
  return { pool: pool as unknown as pg.Pool, statements }
}

function pendingStart(now: number): PendingStart {
  const input = startInputAt(now)
  const event = startEvent(
    input,
    { recordId: ulid(now), sessionId: ulid(now) },
    now,
    requestDigest('start', input),
    TEST_POLICY,
  )
  return { event, digest: event.input_digest, startedAt: now, expiresAt: now + TEST_POLICY.idleTimeoutMs }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('StartBatcher', () => {
  it('keeps two batches in flight by default and writes every start queued meanwhile as one statement', async () => {
    expect(DEFAULT_START_BATCHES).toBe(2)
    const { pool, statements } = scriptedPool()
    const batcher = new StartBatcher(pool, schemaNames('care_sessions'))
    const now = Date.now()
    const results = Array.from({ length: 10 }, (_, i) => batcher.submit(pendingStart(now + i)))
    await tick()
    // The first two starts went out alone (nothing was queued yet); eight wait for a free slot.
    expect(statements.map((s) => s.sessionIds.length)).toEqual([1, 1])
    statements[0]?.settle()
    await tick()
    expect(statements.map((s) => s.sessionIds.length)).toEqual([1, 1, 8])
    statements[1]?.settle()
    statements[2]?.settle()
    expect(await Promise.all(results)).toEqual(Array.from({ length: 10 }, () => ({ kind: 'inserted' })))
    await batcher.drain()
    expect(statements).toHaveLength(3)
  })

  it('refuses a start PostgreSQL cannot store on its own, and writes its neighbours', async () => {
    const { pool, statements } = scriptedPool()
    const batcher = new StartBatcher(pool, schemaNames('care_sessions'))
    const now = Date.now()
    const lone = pendingStart(now + 1)
    lone.event = { ...lone.event, user_id: 'user-\uD800' }
    const nul = pendingStart(now + 2)
    nul.event = { ...nul.event, session_id: 'a\u0000b' }
    const unsafe = { ...pendingStart(now + 3), expiresAt: 2 ** 53 }
    const starts = [pendingStart(now), lone, nul, unsafe, pendingStart(now + 4)]
    const results = starts.map((start) =>
      batcher.submit(start).then(
        (result) => result.kind,
        (error: Error) => `${error.name}: ${error.message}`,
      ),
    )
    await tick()
    for (const s of statements) s.settle()
    await tick()
    for (const s of statements) s.settle()
    expect(await Promise.all(results)).toEqual([
      'inserted',
      'RangeError: start event: user_id cannot be stored in PostgreSQL',
      'RangeError: start event: session_id cannot be stored in PostgreSQL',
      'RangeError: start event: expires_at cannot be stored in PostgreSQL',
      'inserted',
    ])
    expect(statements.flatMap((s) => s.sessionIds)).toEqual([
      starts[0]!.event.session_id,
      starts[4]!.event.session_id,
    ])
    // A paired surrogate (a character above U+FFFF) is fine.
    expect(unstorableField({ ...lone, event: { ...lone.event, user_id: 'user-\u{1F600}' } })).toBeUndefined()
  })

  it('keeps as many batches in flight as it is told', async () => {
    const { pool, statements } = scriptedPool()
    const batcher = new StartBatcher(pool, schemaNames('care_sessions'), 4)
    const now = Date.now()
    const results = Array.from({ length: 10 }, (_, i) => batcher.submit(pendingStart(now + i)))
    await tick()
    expect(statements.map((s) => s.sessionIds.length)).toEqual([1, 1, 1, 1])
    for (const s of statements.splice(0)) s.settle()
    await tick()
    expect(statements.map((s) => s.sessionIds.length)).toEqual([6])
    statements[0]?.settle()
    await Promise.all(results)
  })

  it('encodes a batch as one JSON array of rows in batch order, with the chained body and hash', () => {
    const now = Date.now()
    const batch = [pendingStart(now), pendingStart(now + 1)]
    const rows = JSON.parse(batchJson(batch)) as Record<string, unknown>[]
    expect(rows.map((r) => r.o)).toEqual([0, 1])
    expect(rows[1]).toEqual({
      o: 1,
      session_id: batch[1]!.event.session_id,
      record_id: batch[1]!.event.record_id,
      input_record_id: batch[1]!.event.input_record_id,
      input_digest: batch[1]!.digest,
      event_time: batch[1]!.event.timestamp,
      ...chainEvent(batch[1]!.event, GENESIS_HASH),
      user_id: batch[1]!.event.user_id,
      started_at: batch[1]!.startedAt,
      idle_timeout_ms: batch[1]!.event.idle_timeout_ms,
      max_duration_ms: batch[1]!.event.max_duration_ms,
      expires_at: batch[1]!.expiresAt,
    })
  })
})
