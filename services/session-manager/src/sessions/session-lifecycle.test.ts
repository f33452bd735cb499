import { beforeEach, describe, expect, it } from 'vitest'
import { StoreUnavailableError } from '../store/event-store.js'
import {
  type LifecycleObserver,
  type SessionLifecycleService,
  TIMEOUT_RETRY_MS,
} from './session-lifecycle.js'
import { MINUTE, startInputAt, TEST_POLICY } from './test-support/inputs.js'
import {
  bootMemorySessions,
  createMemorySessions,
  ManualClock,
  MemoryEventStore,
} from './test-support/memory-event-store.js'

const policy = TEST_POLICY

let clock: ManualClock
let store: MemoryEventStore
let service: SessionLifecycleService

const boot = () => bootMemorySessions(store, { policy, clock })

const startInput = () => startInputAt(clock.now())

beforeEach(async () => {
  clock = new ManualClock()
  store = new MemoryEventStore()
  service = await boot()
})

// Behaviour shared with every store lives in session-lifecycle.contract.test.ts; these are the
// embedded service's own promises.
describe('the session lifecycle on the embedded repository', () => {
  it('acknowledges nothing when the store fails, and a retry succeeds once it recovers', async () => {
    const input = startInput()
    store.failAppends = true
    await expect(service.start(input)).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(await service.openSessions()).toBe(0)
    store.failAppends = false
    expect((await service.start(input)).status).toBe(201)
    expect(store.events).toHaveLength(1)
  })

  it('tries a timeout end again when storing it failed, and records it with the true expiry time once storage is back', async () => {
    const { output: started } = await service.start(startInput())
    clock.advance(31 * MINUTE)
    store.failAppends = true
    await service.sweepExpired()
    expect((await service.describe(started.session_id))?.status).toBe('open')
    store.failAppends = false
    clock.advance(TIMEOUT_RETRY_MS)
    await service.sweepExpired()
    expect(await service.describe(started.session_id)).toMatchObject({
      status: 'ended',
      end_reason: 'idle_timeout',
      ended_at: '2026-03-01T12:30:00.000Z',
    })
    expect(store.events.filter((e) => e.event === 'session.end')).toHaveLength(1)
  })

  it('tells its observer about every write, stored or not, and about nothing else', async () => {
    const seen: string[] = []
    const observer: LifecycleObserver = {
      async record(event, write) {
        const stored = await write()
        seen.push(`${event.event}${event.event === 'session.end' ? `:${event.reason}` : ''} ${stored}`)
        return stored
      },
    }
    const observed = await bootMemorySessions(store, { policy, clock, observer })
    const input = startInput()
    const { output: first } = await observed.start(input)
    expect((await observed.start(input)).status).toBe(200) // a retry: answered, nothing new stored
    await observed.start(startInput())
    await observed.describe(first.session_id)
    store.failAppends = true
    await expect(observed.start(startInput())).rejects.toBeInstanceOf(StoreUnavailableError)
    store.failAppends = false
    clock.advance(31 * MINUTE)
    await observed.sweepExpired()
    expect(seen).toEqual([
      'session.start true',
      'session.start false',
      'session.start true',
      'session.end:idle_timeout true',
      'session.end:idle_timeout true',
    ])
  })

  it('resumes timers of sessions still open after a restart', async () => {
    const { output: started } = await service.start(startInput())
    await service.close()
    clock.advance(10 * MINUTE)
    const restarted = await boot()
    clock.advance(20 * MINUTE)
    await restarted.sweepExpired()
    expect((await restarted.describe(started.session_id))?.end_reason).toBe('idle_timeout')
  })

  describe('concurrent duplicates of one start (a record_id is answered 201 once)', () => {
    /** Lets every queued promise callback run (no timers, no wall clock). */
    const settled = () => new Promise<void>((resolve) => setImmediate(resolve))
    const statuses = (outcomes: { status: number }[]) => outcomes.map((o) => o.status).sort()

    it('answers two identical starts in flight at once with one 201 and one 200 of the same output, storing one event', async () => {
      const input = startInput()
      store.holdCommits()
      const first = service.start(input)
      const second = service.start(input)
      await settled()
      expect(store.waiting).toBe(1) // the duplicate joined the first start; it appended nothing
      store.commit()
      const outcomes = await Promise.all([first, second])
      expect(statuses(outcomes)).toEqual([200, 201])
      expect(outcomes[0].status).toBe(201)
      expect(outcomes[1].output).toEqual(outcomes[0].output)
      expect(store.events).toHaveLength(1)
    })

    it('answers a duplicate that arrives while the group commit is pending, and one after it resolved, with 200', async () => {
      const input = startInput()
      store.holdCommits()
      const first = service.start(input)
      await settled()
      expect(store.waiting).toBe(1)
      const during = service.start(input)
      await settled()
      expect(store.waiting).toBe(1)
      store.commit()
      const [original, joined] = await Promise.all([first, during])
      const after = await service.start(input)
      expect([original.status, joined.status, after.status]).toEqual([201, 200, 200])
      expect(joined.output).toEqual(original.output)
      expect(after.output).toEqual(original.output)
      expect(store.events).toHaveLength(1)
    })

    it('fails both in-flight duplicates when the group commit fails, and their retries give one 201 and one 200', async () => {
      const input = startInput()
      store.holdCommits()
      const failed = [service.start(input), service.start(input)]
      await settled()
      store.failCommit()
      for (const outcome of failed) await expect(outcome).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(store.events).toHaveLength(0)

      store.holdCommits()
      const retried = [service.start(input), service.start(input)]
      await settled()
      expect(store.waiting).toBe(1)
      store.commit()
      const [a, b] = await Promise.all(retried)
      expect(statuses([a!, b!])).toEqual([200, 201])
      expect(b!.output).toEqual(a!.output)
      expect(store.events).toHaveLength(1)
      expect((await service.start(input)).status).toBe(200)
    })

    it('answers a duplicate of an acknowledged start with 200 and the original output after a restart', async () => {
      const input = startInput()
      const original = await service.start(input)
      await service.close()
      const restarted = await boot()
      const [again, andAgain] = await Promise.all([restarted.start(input), restarted.start(input)])
      expect([original.status, again.status, andAgain.status]).toEqual([201, 200, 200])
      expect(again.output).toEqual(original.output)
      expect(andAgain.output).toEqual(original.output)
      expect(store.events).toHaveLength(1)
    })
  })

  it('refuses to be used before recovery', async () => {
    const fresh = await createMemorySessions(store, { policy, clock })
    await expect(fresh.start(startInput())).rejects.toThrow(/before recover/)
  })
})
