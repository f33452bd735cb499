import {
  type SessionManagerEndInput,
  type SessionManagerStartInput,
  validateSessionManagerEndOutput,
  validateSessionManagerStartOutput,
  validateSessionManagerTouchOutput,
} from '@care/schemas'
import { ulid } from 'ulid'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../postgres/test-support/postgres-server.js'
import { SessionError } from './session-errors.js'
import type { SessionLifecycleService } from './session-lifecycle.js'
import { endInputAt, MINUTE, startInputAt, TEST_POLICY } from './test-support/inputs.js'
import {
  fileImplementation,
  type LifecycleStore,
  memoryImplementation,
  postgresImplementation,
} from './test-support/lifecycle-harness.js'
import { ManualClock } from './test-support/memory-event-store.js'

// The behaviour of the one lifecycle core, run once per repository: in memory, the real JSONL log
// on disk, and PostgreSQL (on a real server started here).
const policy = TEST_POLICY

// The mutation run (stryker.config.json, `pnpm test:mutation`) sets CARE_LIFECYCLE_EMBEDDED_ONLY=1 to
// keep each mutant's run short: the contract then runs on memory and the JSONL log only.
const embeddedOnly = process.env.CARE_LIFECYCLE_EMBEDDED_ONLY === '1'
const postgresUnlessEmbeddedOnly = (server: () => TestPostgres) =>
  embeddedOnly ? [] : [postgresImplementation(server)]

let server: TestPostgres
beforeAll(async () => {
  if (!embeddedOnly) server = await startTestPostgres()
}, 60_000)
afterAll(async () => {
  await server?.destroy()
}, 30_000)

describe.each([memoryImplementation, fileImplementation, ...postgresUnlessEmbeddedOnly(() => server)])(
  '$name',
  (implementation) => {
    let clock: ManualClock
    let store: LifecycleStore
    let service: SessionLifecycleService

    const boot = async () => (await store.boot(policy, clock)).service
    const ends = async () => (await store.events()).filter((e) => e.event === 'session.end')

    const startInput = (overrides: Partial<SessionManagerStartInput> = {}) =>
      startInputAt(clock.now(), overrides)
    const endInput = (sessionId: string, overrides: Partial<SessionManagerEndInput> = {}) =>
      endInputAt(clock.now(), sessionId, overrides)

    async function rejection(promise: Promise<unknown>): Promise<SessionError> {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(SessionError)
      return error as SessionError
    }

    beforeEach(async () => {
      clock = new ManualClock()
      store = await implementation.createStore()
      service = await boot()
    })
    afterEach(async () => {
      await service.close()
      await store.dispose()
    })

    describe('start', () => {
      it('creates a session with a new ULID and records one schema-valid start event', async () => {
        const { status, output } = await service.start(startInput({ metadata: { device: 'tablet' } }))
        expect(status).toBe(201)
        expect(validateSessionManagerStartOutput.validate(output)).toEqual({ ok: true, value: output })
        expect(output.timestamp).toBe('2026-03-01T12:00:00.000Z')
        expect(await store.events()).toHaveLength(1)
        expect(await service.describe(output.session_id)).toMatchObject({
          status: 'open',
          user_id: 'user-1',
          event_count: 1,
          expires_at: '2026-03-01T12:30:00.000Z',
        })
      })

      it('gives every session of the same user a different, increasing id', async () => {
        const ids: string[] = []
        for (let i = 0; i < 20; i++) ids.push((await service.start(startInput())).output.session_id)
        expect(new Set(ids).size).toBe(20)
        expect([...ids].sort()).toEqual(ids)
      })

      it('answers a retry with the same record_id and body with the original output and records nothing new', async () => {
        const input = startInput({ metadata: { note: 'é \u2028 "quoted"', n: 1.5 } })
        const first = await service.start(input)
        const retry = await service.start({ ...input })
        expect(retry).toEqual({ status: 200, output: first.output })
        expect(await store.events()).toHaveLength(1)
      })

      it('creates one session for concurrent duplicates of the same request', async () => {
        const input = startInput()
        const results = await Promise.all([service.start(input), service.start(input), service.start(input)])
        expect(new Set(results.map((r) => r.output.session_id)).size).toBe(1)
        expect(results.map((r) => r.status).sort()).toEqual([200, 200, 201])
        expect(await store.events()).toHaveLength(1)
      })

      it('refuses a reused record_id with a different body (422)', async () => {
        const input = startInput()
        await service.start(input)
        const error = await rejection(service.start({ ...input, user_id: 'someone-else' }))
        expect(error.code).toBe('idempotency_conflict')
        expect(await store.events()).toHaveLength(1)
      })

      it('refuses a record_id older than the retry window', async () => {
        const old = ulid(clock.now() - policy.retryWindowMs - 1)
        expect((await rejection(service.start(startInput({ record_id: old })))).code).toBe(
          'record_id_expired',
        )
      })

      it('refuses a record_id from more than the allowed clock skew in the future, and records nothing', async () => {
        const ahead = ulid(clock.now() + 5 * MINUTE + 1000)
        expect((await rejection(service.start(startInput({ record_id: ahead })))).code).toBe(
          'record_id_in_future',
        )
        const slightlyAhead = ulid(clock.now() + 60_000)
        expect((await service.start(startInput({ record_id: slightlyAhead }))).status).toBe(201)
        expect(await store.events()).toHaveLength(1)
      })
    })

    describe('end', () => {
      it('ends an open session explicitly with its start and end times', async () => {
        const { output: started } = await service.start(startInput())
        clock.advance(5 * MINUTE)
        const { output } = await service.end(endInput(started.session_id))
        expect(validateSessionManagerEndOutput.check(output)).toBe(true)
        expect(output).toMatchObject({
          reason: 'explicit',
          started_at: '2026-03-01T12:00:00.000Z',
          ended_at: '2026-03-01T12:05:00.000Z',
          session_id: started.session_id,
        })
        expect(await service.describe(started.session_id)).toMatchObject({
          status: 'ended',
          end_reason: 'explicit',
        })
      })

      it('answers 404 for an unknown session and for a session of another user alike', async () => {
        const { output: started } = await service.start(startInput())
        const unknown = await rejection(service.end(endInput(ulid(clock.now()))))
        const otherUser = await rejection(service.end(endInput(started.session_id, { user_id: 'user-2' })))
        expect([unknown.code, otherUser.code]).toEqual(['session_not_found', 'session_not_found'])
        expect(unknown.message).toBe(otherUser.message)
      })

      it('answers 409 with how it ended for a second end, but the original output for a retry', async () => {
        const { output: started } = await service.start(startInput())
        const input = endInput(started.session_id)
        const first = await service.end(input)
        expect(await service.end({ ...input })).toEqual({ status: 200, output: first.output })
        const again = await rejection(service.end(endInput(started.session_id)))
        expect(again.code).toBe('session_ended')
        expect(again.details).toMatchObject({ reason: 'explicit' })
        expect(await ends()).toHaveLength(1)
      })

      it('answers a retried touch with the original output, and 422 for the same record_id used to end', async () => {
        const { output: started } = await service.start(startInput())
        const touch = endInput(started.session_id)
        const first = await service.touch(touch)
        expect(await service.touch({ ...touch })).toEqual({ status: 200, output: first.output })
        expect((await rejection(service.end({ ...touch }))).code).toBe('idempotency_conflict')
      })

      it('records exactly one end when explicit ends race', async () => {
        const { output: started } = await service.start(startInput())
        const results = await Promise.allSettled([
          service.end(endInput(started.session_id)),
          service.end(endInput(started.session_id)),
          service.end(endInput(started.session_id)),
        ])
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        expect(await ends()).toHaveLength(1)
      })
    })

    describe('timeouts', () => {
      it('ends an idle session with reason idle_timeout at the moment the limit was reached', async () => {
        const { output: started } = await service.start(startInput())
        clock.advance(30 * MINUTE + 7_000) // noticed 7 s late
        await service.sweepExpired()
        const end = (await store.events()).at(-1)!
        expect(end).toMatchObject({ event: 'session.end', reason: 'idle_timeout', origin: 'system' })
        expect(end.event === 'session.end' && end.ended_at).toBe('2026-03-01T12:30:00.000Z')
        expect(end.timestamp).toBe('2026-03-01T12:30:07.000Z')
        expect((await service.describe(started.session_id))?.status).toBe('ended')
      })

      it('keeps a touched session open and measures idleness from the last touch', async () => {
        const { output: started } = await service.start(startInput())
        clock.advance(20 * MINUTE)
        const { output: touched } = await service.touch(endInput(started.session_id))
        expect(validateSessionManagerTouchOutput.check(touched)).toBe(true)
        clock.advance(20 * MINUTE)
        await service.sweepExpired()
        expect((await service.describe(started.session_id))?.status).toBe('open')
        clock.advance(10 * MINUTE)
        await service.sweepExpired()
        expect(await service.describe(started.session_id)).toMatchObject({
          status: 'ended',
          end_reason: 'idle_timeout',
          ended_at: '2026-03-01T12:50:00.000Z',
        })
      })

      it('ends a session at its maximum duration however active it is', async () => {
        const { output: started } = await service.start(startInput())
        for (let i = 0; i < 24 * 4; i++) {
          clock.advance(15 * MINUTE)
          await service.sweepExpired()
          if ((await service.describe(started.session_id))?.status === 'ended') break
          await service.touch(endInput(started.session_id))
        }
        expect(await service.describe(started.session_id)).toMatchObject({
          end_reason: 'max_duration',
          ended_at: '2026-03-02T12:00:00.000Z',
        })
      })

      it('records the timeout, not the late explicit end, when the end arrives after the limit', async () => {
        const { output: started } = await service.start(startInput())
        clock.advance(31 * MINUTE)
        const error = await rejection(service.end(endInput(started.session_id)))
        expect(error.details).toMatchObject({ reason: 'idle_timeout', ended_at: '2026-03-01T12:30:00.000Z' })
        await service.sweepExpired()
        expect(await ends()).toHaveLength(1)
      })
    })

    describe('restart', () => {
      it('keeps sessions and answers retries after a restart', async () => {
        const input = startInput()
        const { output: started } = await service.start(input)
        await service.close()
        service = await boot()
        expect((await service.describe(started.session_id))?.status).toBe('open')
        expect(await service.start(input)).toEqual({ status: 200, output: started })
        const { output: ended } = await service.end(endInput(started.session_id))
        expect(ended.reason).toBe('explicit')
      })

      it('ends a session that expired while down with its true expiry time, exactly once across restarts', async () => {
        const { output: started } = await service.start(startInput())
        await service.close()
        clock.advance(2 * 60 * MINUTE)
        service = await boot()
        expect(await service.describe(started.session_id)).toMatchObject({
          status: 'ended',
          end_reason: 'idle_timeout',
          ended_at: '2026-03-01T12:30:00.000Z',
        })
        await service.close()
        clock.advance(MINUTE)
        service = await boot()
        expect(await ends()).toHaveLength(1)
      })
    })

    describe('timeline', () => {
      it('pages a session’s events in order without touching other sessions', async () => {
        const { output: a } = await service.start(startInput())
        const { output: b } = await service.start(startInput({ user_id: 'user-2' }))
        for (let i = 0; i < 5; i++) await service.touch(endInput(a.session_id))
        await service.end(endInput(a.session_id))
        const first = await service.timeline(a.session_id, { limit: 4 })
        const second = await service.timeline(a.session_id, { cursor: first!.nextCursor, limit: 4 })
        const events = [...first!.events, ...second!.events]
        expect(events.map((e) => e.event)).toEqual([
          'session.start',
          ...Array(5).fill('session.touch'),
          'session.end',
        ])
        expect(events.every((e) => e.session_id === a.session_id)).toBe(true)
        expect(second!.nextCursor).toBeUndefined()
        expect(await service.timeline(b.session_id)).toMatchObject({ events: [{ event: 'session.start' }] })
        expect(await service.timeline(ulid(clock.now()))).toBeUndefined()
      })
    })
  },
)
