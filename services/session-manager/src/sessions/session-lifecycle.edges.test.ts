import { createHash } from 'node:crypto'
import { canonicalJson } from '@care/event-log'
import { ulid } from 'ulid'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createIdFactory, type IdFactory } from '../ids/id-factory.js'
import { EmbeddedSessionRepository } from '../store/embedded-session-repository.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { RECORD_ID_CLOCK_SKEW_MS, requestDigest } from './lifecycle-events.js'
import { SessionError } from './session-errors.js'
import {
  type Clock,
  type SessionLifecycleOptions,
  SessionLifecycleService,
  TIMEOUT_RETRY_MS,
} from './session-lifecycle.js'
import { endInputAt, MINUTE, startInputAt, TEST_POLICY } from './test-support/inputs.js'
import { ManualClock, MemoryEventStore } from './test-support/memory-event-store.js'

// The lifecycle core's edges that the store contract does not reach: its own timers, batching of
// the sweep, record_id limits to the millisecond, id collisions, shutdown. All on the memory store.
const policy = TEST_POLICY
const T0 = Date.parse('2026-03-01T12:00:00.000Z')

let store: MemoryEventStore

async function bootOn(
  options: Partial<SessionLifecycleOptions> & { clock?: Clock },
  tracksExpiry = true,
): Promise<SessionLifecycleService> {
  const embedded = await EmbeddedSessionRepository.open(store.opener())
  // A repository that cannot name its next deadline (like PostgreSQL): the lifecycle polls instead.
  const repository = tracksExpiry
    ? embedded
    : new Proxy(embedded, {
        get: (target, key) => (key === 'tracksExpiry' ? false : Reflect.get(target, key, target)),
      })
  const service = new SessionLifecycleService(repository, { policy, newId: createIdFactory(), ...options })
  await service.recover()
  return service
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (error: unknown) => error,
  )
}

const ends = () => store.events.filter((e) => e.event === 'session.end')

beforeEach(() => {
  store = new MemoryEventStore()
})

describe('the lifecycle with real timers (faked clock and timers, no waiting)', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      now: T0,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('ends an idle session by itself at its deadline, not a millisecond before, with timers on by default', async () => {
    const service = await bootOn({})
    const { output } = await service.start(startInputAt(Date.now()))
    await vi.advanceTimersByTimeAsync(30 * MINUTE - 1)
    expect((await service.describe(output.session_id))?.status).toBe('open')
    await vi.advanceTimersByTimeAsync(1)
    expect(await service.describe(output.session_id)).toMatchObject({
      status: 'ended',
      end_reason: 'idle_timeout',
      ended_at: '2026-03-01T12:30:00.000Z',
    })
    await service.close()
  })

  it('polls for expired sessions every quarter of the idle timeout when the repository cannot name the next deadline', async () => {
    const short = { ...policy, idleTimeoutMs: 1000 }
    const service = await bootOn({ policy: short }, false)
    await vi.advanceTimersByTimeAsync(10)
    const { output } = await service.start(startInputAt(Date.now()))
    // Deadline at +1010 ms; polls at +250, +500, ... find it at +1250, not at +1100 (a 100 ms poll).
    await vi.advanceTimersByTimeAsync(1239)
    expect((await service.describe(output.session_id))?.status).toBe('open')
    await vi.advanceTimersByTimeAsync(1)
    expect(await service.describe(output.session_id)).toMatchObject({
      status: 'ended',
      ended_at: new Date(T0 + 1010).toISOString(),
    })
    await service.close()
  })

  it('polls at the interval it is given', async () => {
    const service = await bootOn({ policy: { ...policy, idleTimeoutMs: 1000 }, sweepIntervalMs: 2000 }, false)
    const { output } = await service.start(startInputAt(Date.now()))
    await vi.advanceTimersByTimeAsync(1999)
    expect((await service.describe(output.session_id))?.status).toBe('open')
    await vi.advanceTimersByTimeAsync(1)
    expect((await service.describe(output.session_id))?.status).toBe('ended')
    await service.close()
  })

  it('logs a failed poll and polls again', async () => {
    const errors: string[] = []
    const fields: object[] = []
    const logger = {
      warn() {},
      info() {},
      error: (o: object, m: string) => {
        errors.push(m)
        fields.push(o)
      },
    }
    const service = await bootOn({ policy: { ...policy, idleTimeoutMs: 1000 }, logger }, false)
    const { output } = await service.start(startInputAt(Date.now()))
    store.failAppends = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(errors).toContain('could not record a timeout end; will retry')
    expect(fields).toContainEqual({ err: expect.any(StoreUnavailableError), session_id: output.session_id })
    store.failAppends = false
    await vi.advanceTimersByTimeAsync(TIMEOUT_RETRY_MS)
    expect(ends()).toHaveLength(1)
    await service.close()
  })

  it('stops its timer and its poll on close: nothing is appended afterwards', async () => {
    for (const tracksExpiry of [true, false]) {
      store = new MemoryEventStore()
      const service = await bootOn({ policy: { ...policy, idleTimeoutMs: 1000 } }, tracksExpiry)
      await service.start(startInputAt(Date.now()))
      expect(vi.getTimerCount()).toBe(1)
      await service.close()
      expect(vi.getTimerCount()).toBe(0)
      await vi.advanceTimersByTimeAsync(10_000)
      expect(store.events.map((e) => e.event)).toEqual(['session.start'])
      expect(vi.getTimerCount()).toBe(0)
    }
  })

  it('arms no timer while nothing is open', async () => {
    const service = await bootOn({})
    expect(vi.getTimerCount()).toBe(0)
    await service.close()
  })

  it('arms neither a timer nor a poll when timers are off', async () => {
    for (const tracksExpiry of [true, false]) {
      const service = await bootOn({ timers: false }, tracksExpiry)
      await service.start(startInputAt(Date.now()))
      expect(vi.getTimerCount()).toBe(0)
      await service.close()
    }
  })

  it('polls only when the repository cannot name the next deadline', async () => {
    const service = await bootOn({})
    await service.start(startInputAt(Date.now()))
    expect(vi.getTimerCount()).toBe(1) // the deadline timer, no poll
    await service.close()
  })
})

describe('the lifecycle with a manual clock', () => {
  let clock: ManualClock
  let service: SessionLifecycleService
  beforeEach(async () => {
    clock = new ManualClock(T0)
    service = await bootOn({ clock, timers: false })
  })
  afterEach(async () => {
    await service.close()
  })

  it('runs one sweep at a time: a sweep asked for during another joins it', async () => {
    const first = service.sweepExpired()
    expect(service.sweepExpired()).toBe(first)
    await first
  })

  it('forgets answers older than the retry window at recovery and then at most once a minute of sweeping', async () => {
    const forget = vi.spyOn(service.repository, 'forgetAnswersBefore')
    await service.sweepExpired()
    clock.advance(60_000 - 1)
    await service.sweepExpired()
    expect(forget).not.toHaveBeenCalled()
    clock.advance(1)
    await service.sweepExpired()
    await service.sweepExpired()
    expect(forget.mock.calls).toEqual([[T0 + 60_000 - policy.retryWindowMs]])
  })

  it('closes its repository once however often it is closed', async () => {
    const close = vi.spyOn(store, 'close')
    await service.close()
    await service.close()
    expect(close).toHaveBeenCalledTimes(1)
  })

  it('refuses a second recover()', async () => {
    await expect(service.recover()).rejects.toThrow('recover() may only be called once')
  })

  it('ends more expired sessions than one sweep batch holds in a single sweep', async () => {
    const ids: string[] = []
    for (let i = 0; i < 201; i++) ids.push((await service.start(startInputAt(clock.now()))).output.session_id)
    clock.advance(30 * MINUTE)
    await service.sweepExpired()
    expect(ends()).toHaveLength(201)
  })

  it('tries a failed timeout end again after TIMEOUT_RETRY_MS, not sooner', async () => {
    const { output } = await service.start(startInputAt(clock.now()))
    clock.advance(30 * MINUTE)
    store.failAppends = true
    await service.sweepExpired()
    store.failAppends = false
    clock.advance(TIMEOUT_RETRY_MS - 1)
    await service.sweepExpired()
    expect((await service.describe(output.session_id))?.status).toBe('open')
    clock.advance(1)
    await service.sweepExpired()
    expect((await service.describe(output.session_id))?.status).toBe('ended')
  })

  it('ends the others of a sweep when one timeout end fails, and retries only that one', async () => {
    const first = (await service.start(startInputAt(clock.now()))).output.session_id
    const second = (await service.start(startInputAt(clock.now()))).output.session_id
    clock.advance(30 * MINUTE)
    let appends = 0
    const append = store.append.bind(store)
    store.append = (event) =>
      ++appends === 1 ? Promise.reject(new StoreUnavailableError('x', 'EIO')) : append(event)
    await service.sweepExpired()
    expect((await service.describe(first))?.status).toBe('open')
    expect((await service.describe(second))?.status).toBe('ended')
    clock.advance(TIMEOUT_RETRY_MS)
    await service.sweepExpired()
    expect((await service.describe(first))?.status).toBe('ended')
    expect(ends()).toHaveLength(2)
  })

  it('treats a touch exactly at the idle deadline as too late: the session ended by timeout (409)', async () => {
    const { output } = await service.start(startInputAt(clock.now()))
    clock.advance(30 * MINUTE)
    const error = await rejection(service.touch(endInputAt(clock.now(), output.session_id)))
    expect(error).toMatchObject({ code: 'session_ended', details: { reason: 'idle_timeout' } })
    expect(ends()).toHaveLength(1)
  })

  it('accepts record_ids exactly at the edges of the retry window and the clock skew, and refuses one past them naming it', async () => {
    const at = (time: number) => startInputAt(clock.now(), { record_id: ulid(time) })
    expect((await service.start(at(T0 - policy.retryWindowMs))).status).toBe(201)
    expect((await service.start(at(T0 + RECORD_ID_CLOCK_SKEW_MS))).status).toBe(201)
    const old = at(T0 - policy.retryWindowMs - 1)
    expect(await rejection(service.start(old))).toMatchObject({
      code: 'record_id_expired',
      details: { record_id: old.record_id },
    })
    const future = at(T0 + RECORD_ID_CLOCK_SKEW_MS + 1)
    expect(await rejection(service.start(future))).toMatchObject({
      code: 'record_id_in_future',
      details: { record_id: future.record_id },
    })
  })

  it('names the record_id of an idempotency conflict and says how the session ended', async () => {
    const input = startInputAt(clock.now())
    const { output } = await service.start(input)
    expect(await rejection(service.start({ ...input, user_id: 'user-2' }))).toMatchObject({
      code: 'idempotency_conflict',
      details: { record_id: input.record_id },
    })
    await service.end(endInputAt(clock.now(), output.session_id))
    const ended = await rejection(service.touch(endInputAt(clock.now(), output.session_id)))
    expect(ended).toBeInstanceOf(SessionError)
    expect((ended as SessionError).message).toBe('The session already ended (explicit).')
  })

  it('stores the digest of each request as sha256 over its kind and its canonical JSON', async () => {
    const sha = (kind: string, input: object) =>
      `sha256:${createHash('sha256')
        .update(`${kind}\n${canonicalJson(input)}`)
        .digest('hex')}`
    const input = startInputAt(clock.now())
    const { output } = await service.start(input)
    expect(output.input_digest).toBe(sha('start', input))
    expect(requestDigest('start', input)).toBe(sha('start', input))
    const touch = endInputAt(clock.now(), output.session_id)
    expect((await service.touch(touch)).output.input_digest).toBe(sha('touch', touch))
    const end = endInputAt(clock.now(), output.session_id)
    expect((await service.end(end)).output.input_digest).toBe(sha('end', end))
  })

  it('leaves metadata out of a start that has none', async () => {
    const { output } = await service.start(startInputAt(clock.now()))
    expect(output).not.toHaveProperty('metadata')
    const tagged = await service.start(startInputAt(clock.now(), { metadata: { ward: '3' } }))
    expect(tagged.output.metadata).toEqual({ ward: '3' })
  })

  it('describes an unknown session as undefined and ends a timeline exactly at its last event', async () => {
    expect(await service.describe('01JZZZZZZZZZZZZZZZZZZZZZZZ')).toBeUndefined()
    const { output } = await service.start(startInputAt(clock.now()))
    await service.touch(endInputAt(clock.now(), output.session_id))
    expect(await service.timeline(output.session_id, { limit: 2 })).not.toHaveProperty('nextCursor')
    expect((await service.timeline(output.session_id, { limit: 1 }))?.nextCursor).toBe(1)
  })

  it('refuses work after close, and a sweep after close appends nothing', async () => {
    await service.start(startInputAt(clock.now()))
    await service.close()
    await service.close()
    expect(await rejection(service.start(startInputAt(clock.now())))).toMatchObject({
      code: 'SHUTTING_DOWN',
      message: 'the service is shutting down',
    })
    clock.advance(31 * MINUTE)
    await service.sweepExpired()
    expect(ends()).toHaveLength(0)
  })

  it('waits on close for a mutation in flight', async () => {
    const { output } = await service.start(startInputAt(clock.now()))
    store.holdCommits()
    const touched = service.touch(endInputAt(clock.now(), output.session_id))
    await new Promise<void>((resolve) => setImmediate(resolve))
    let closed = false
    const closing = service.close().then(() => {
      closed = true
    })
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(closed).toBe(false)
    store.commit()
    await closing
    expect((await touched).status).toBe(200)
  })
})

describe('start with colliding ids', () => {
  /** An id factory that hands out `ids` first, then fresh ULIDs; counts its calls. */
  function scripted(ids: string[]): IdFactory & { calls: number } {
    const fresh = createIdFactory()
    const factory = Object.assign(
      (now?: number) => {
        factory.calls++
        return ids.shift() ?? fresh(now)
      },
      { calls: 0 },
    )
    return factory
  }

  it('tries again with new ids when a session id is already taken', async () => {
    const taken = ulid(T0)
    const newId = scripted([ulid(T0), taken, ulid(T0), taken])
    const service = await bootOn({ clock: new ManualClock(T0), timers: false, newId })
    expect((await service.start(startInputAt(T0))).output.session_id).toBe(taken)
    const second = await service.start(startInputAt(T0))
    expect(second.status).toBe(201)
    expect(second.output.session_id).not.toBe(taken)
    expect(store.events).toHaveLength(2)
  })

  it('stamps a start retried after a collision with the time of the attempt that stored it', async () => {
    const taken = ulid(T0)
    const reads: number[] = []
    let ticks = 0
    const clock = {
      now: () => {
        ticks++
        reads.push(T0 + ticks)
        return T0 + ticks
      },
    }
    const newId = scripted([ulid(T0), taken, ulid(T0), taken])
    const service = await bootOn({ clock, timers: false, newId })
    await service.start(startInputAt(T0))
    reads.length = 0
    const { output } = await service.start(startInputAt(T0))
    expect(reads).toHaveLength(2) // once for the record_id check and the first attempt, once for the second attempt
    expect(output.timestamp).toBe(new Date(reads[1]!).toISOString())
  })

  it('gives up with 503 CONTENTION after twenty attempts', async () => {
    const taken = ulid(T0)
    const newId = scripted([ulid(T0), taken])
    const service = await bootOn({ clock: new ManualClock(T0), timers: false, newId })
    await service.start(startInputAt(T0))
    const always = Object.assign((now?: number) => (always.calls++ % 2 === 0 ? ulid(now) : taken), {
      calls: 0,
    })
    const stuck = new SessionLifecycleService(service.repository, {
      policy,
      newId: always,
      clock: new ManualClock(T0),
      timers: false,
    })
    await stuck.recover()
    const error = await rejection(stuck.start(startInputAt(T0)))
    expect(error).toBeInstanceOf(StoreUnavailableError)
    expect(error).toMatchObject({ code: 'CONTENTION', message: 'too much contention on this record_id' })
    expect(always.calls).toBe(40)
  })
})
