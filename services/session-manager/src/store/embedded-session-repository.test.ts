import { LogCorruptError } from '@care/event-log'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createSessionManagerApp } from '../app.js'
import { createIdFactory } from '../ids/id-factory.js'
import { SessionLifecycleService } from '../sessions/session-lifecycle.js'
import { endInputAt, MINUTE, startInputAt, TEST_POLICY } from '../sessions/test-support/inputs.js'
import { ManualClock, MemoryEventStore } from '../sessions/test-support/memory-event-store.js'
import { EmbeddedSessionRepository, type HotState } from './embedded-session-repository.js'
import { SessionArchivedError, StoreUnavailableError } from './event-store.js'
import { LOG_INTEGRITY } from './file-event-store.js'

const policy = TEST_POLICY
let clock: ManualClock
let store: MemoryEventStore

async function boot(
  restore?: { hot: HotState<number>; point: { seq: number } },
  hotAnswersMs?: number,
  timelineCache?: { timelineCacheBytes?: number; timelineCacheSessionBytes?: number },
) {
  const repository = await EmbeddedSessionRepository.open(store.opener(restore?.point), {
    ...(restore ? { restore: restore.hot } : {}),
    ...(hotAnswersMs ? { hotAnswersMs } : {}),
    ...timelineCache,
  })
  const service = new SessionLifecycleService(repository, {
    newId: createIdFactory(),
    timers: false,
    policy,
    clock,
  })
  await service.recover()
  return { repository, service }
}

async function capture(repository: EmbeddedSessionRepository<number>) {
  const { hot, point } = await repository.captureHotState(() => undefined)
  // Through JSON, as a snapshot file stores it.
  return JSON.parse(JSON.stringify({ hot, point })) as { hot: HotState<number>; point: { seq: number } }
}

beforeEach(() => {
  clock = new ManualClock()
  store = new MemoryEventStore()
})

describe('the embedded repository keeps only hot state', () => {
  it('holds no closed session in memory, yet describes, pages and refuses them from the store', async () => {
    const { repository, service } = await boot()
    const ids: string[] = []
    for (let i = 0; i < 50; i++) {
      const { output } = await service.start(startInputAt(clock.now()))
      ids.push(output.session_id)
      clock.advance(1)
      await service.touch(endInputAt(clock.now(), output.session_id))
      if (i < 40) await service.end(endInputAt(clock.now(), output.session_id))
    }
    expect(repository.hotSessions).toBe(10)
    expect(await service.openSessions()).toBe(10)
    const closed = ids[3]!
    expect(await service.describe(closed)).toMatchObject({
      status: 'ended',
      end_reason: 'explicit',
      event_count: 3,
    })
    const page = await service.timeline(closed, { limit: 2 })
    expect(page?.events.map((e) => e.event)).toEqual(['session.start', 'session.touch'])
    expect(page?.nextCursor).toBe(2)
    await expect(service.touch(endInputAt(clock.now(), closed))).rejects.toMatchObject({
      code: 'session_ended',
    })
    // Timeouts leave memory too.
    clock.advance(policy.idleTimeoutMs + MINUTE)
    await service.sweepExpired()
    expect(repository.hotSessions).toBe(0)
    expect(await service.describe(ids[49]!)).toMatchObject({ status: 'ended', end_reason: 'idle_timeout' })
  })

  it('after a full replay only open sessions are in memory', async () => {
    const first = await boot()
    for (let i = 0; i < 30; i++) {
      const { output } = await first.service.start(startInputAt(clock.now()))
      if (i % 3 !== 0) await first.service.end(endInputAt(clock.now(), output.session_id))
    }
    await first.service.close()
    const { repository, service } = await boot()
    expect(repository.hotSessions).toBe(10)
    expect(await service.openSessions()).toBe(10)
  })

  it('answers a closed session whose events were archived explicitly, not as unknown', async () => {
    const { service } = await boot()
    const { output } = await service.start(startInputAt(clock.now()))
    await service.end(endInputAt(clock.now(), output.session_id))
    store.events.length = 0 // retention moved them away
    store.archived = clock.now() + 1
    const { service: again } = await boot()
    await expect(again.describe(output.session_id)).rejects.toBeInstanceOf(SessionArchivedError)
    const app = createSessionManagerApp({
      sessions: () => again,
      config: { tokens: new Map(), bodyLimitBytes: 16 * 1024 },
      logger: { error() {} },
    })
    for (const path of [`/sessions/${output.session_id}`, `/sessions/${output.session_id}/timeline`]) {
      const res = await app.request(path)
      expect(res.status).toBe(410)
      expect(await res.json()).toMatchObject({
        error: 'session_archived',
        details: { session_id: output.session_id },
      })
    }
    store.archived = undefined
    expect(await again.describe('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeUndefined()
  })
})

describe('snapshots of the hot state', () => {
  it('a start resumed from a snapshot has the same sessions, deadlines and answers as a full replay', async () => {
    const first = await boot()
    const starts = []
    for (let i = 0; i < 6; i++) starts.push(startInputAt(clock.now(), { user_id: `user-${i}` }))
    const outputs = []
    for (const input of starts) outputs.push((await first.service.start(input)).output)
    const as = (i: number) => ({ user_id: `user-${i}` })
    await first.service.end(endInputAt(clock.now(), outputs[0]!.session_id, as(0)))
    const snapshot = await capture(first.repository)
    expect(snapshot.point.seq).toBe(store.events.length)
    expect(snapshot.hot.sessions).toHaveLength(5)
    // More events after the snapshot: replayed on top of it.
    clock.advance(MINUTE)
    await first.service.touch(endInputAt(clock.now(), outputs[1]!.session_id, as(1)))
    await first.service.end(endInputAt(clock.now(), outputs[2]!.session_id, as(2)))
    await first.service.close()

    const resumed = await boot(snapshot)
    const replayed = await boot()
    for (const { session_id } of outputs) {
      expect(await resumed.service.describe(session_id)).toEqual(await replayed.service.describe(session_id))
    }
    expect(await resumed.service.openSessions()).toBe(4)
    expect(resumed.repository.nextExpiryAt()).toBe(replayed.repository.nextExpiryAt())
    // A retry of a start made before the restart gets the original output.
    for (const [i, input] of starts.entries()) {
      expect(await resumed.service.start(input)).toEqual({ status: 200, output: outputs[i] })
    }
    // And a different body under the same record_id is still refused.
    await expect(resumed.service.start({ ...starts[1]!, user_id: 'other' })).rejects.toMatchObject({
      code: 'idempotency_conflict',
    })
  })

  it('waits for appends in flight before capturing, so the state matches the point exactly', async () => {
    const { repository, service } = await boot()
    await service.start(startInputAt(clock.now()))
    store.holdCommits()
    const starting = service.start(startInputAt(clock.now()))
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(store.waiting).toBe(1)
    let captured: Awaited<ReturnType<typeof capture>> | undefined
    const capturing = capture(repository).then((c) => {
      captured = c
    })
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(captured).toBeUndefined()
    store.commit()
    await Promise.all([starting, capturing])
    expect(captured?.point.seq).toBe(2)
    expect(captured?.hot.sessions).toHaveLength(2)
    expect(captured?.hot.answers).toHaveLength(2)
  })

  it('keeps only the newest answers in memory; older retries inside the window are answered from the index', async () => {
    const { repository, service } = await boot(undefined, 10 * MINUTE)
    const early = startInputAt(clock.now())
    const first = await service.start(early)
    clock.advance(30 * MINUTE)
    const late = await service.start(startInputAt(clock.now()))
    const snapshot = await capture(repository) // captures prune to the hot horizon
    expect(snapshot.hot.answers.map((a) => a.recordId)).toEqual([late.output.input_record_id])
    expect(repository.hotAnswers).toBe(1)
    const lookups = store.lookups
    expect(await service.start(early)).toEqual({ status: 200, output: first.output })
    expect(store.lookups).toBeGreaterThan(lookups)
    await expect(service.start({ ...early, user_id: 'other' })).rejects.toMatchObject({
      code: 'idempotency_conflict',
    })
  })

  it('answers a record_id no longer in memory from the store index', async () => {
    const { repository, service } = await boot()
    const input = startInputAt(clock.now())
    const { output } = await service.start(input)
    repository.forgetAnswersBefore(clock.now() + 1)
    expect(repository.hotAnswers).toBe(0)
    const lookups = store.lookups
    const { answer } = await repository.load(output.session_id, input.record_id)
    expect(store.lookups).toBeGreaterThan(lookups)
    expect(await answer?.event()).toEqual(output)
  })
})

describe('timelines are served from verified events kept in memory', () => {
  it('reads a closed session from the store once, then pages it from memory', async () => {
    const { service } = await boot()
    const { output } = await service.start(startInputAt(clock.now()))
    clock.advance(1)
    await service.touch(endInputAt(clock.now(), output.session_id))
    await service.end(endInputAt(clock.now(), output.session_id))
    const reads = vi.spyOn(store, 'read')
    const first = await service.timeline(output.session_id)
    expect(first?.events.map((e) => e.event)).toEqual(['session.start', 'session.touch', 'session.end'])
    const readsAfterFirst = reads.mock.calls.length
    expect(readsAfterFirst).toBeGreaterThan(0)
    expect(await service.timeline(output.session_id)).toEqual(first)
    expect((await service.timeline(output.session_id, { cursor: 1, limit: 1 }))?.events).toEqual([
      first?.events[1],
    ])
    expect(reads.mock.calls.length).toBe(readsAfterFirst)
  })

  it('caches nothing from a read that failed its check: the next timeline reads the store again', async () => {
    const { service } = await boot()
    const { output } = await service.start(startInputAt(clock.now()))
    await service.end(endInputAt(clock.now(), output.session_id))
    const reads = vi.spyOn(store, 'read').mockRejectedValueOnce(new Error('line 1 fails its hash'))
    await expect(service.timeline(output.session_id)).rejects.toThrow(/fails its hash/)
    const page = await service.timeline(output.session_id)
    expect(page?.events.map((e) => e.event)).toEqual(['session.start', 'session.end'])
    expect(reads.mock.calls.length).toBe(2)
  })

  it('reads only the events an open session gained since its last timeline', async () => {
    const { service } = await boot()
    const { output } = await service.start(startInputAt(clock.now()))
    const reads = vi.spyOn(store, 'read')
    expect((await service.timeline(output.session_id))?.events).toHaveLength(1)
    expect(reads.mock.calls.at(-1)?.[0]).toEqual([0])
    clock.advance(1)
    await service.touch(endInputAt(clock.now(), output.session_id))
    const page = await service.timeline(output.session_id)
    expect(page?.events.map((e) => e.event)).toEqual(['session.start', 'session.touch'])
    expect(reads.mock.calls.at(-1)?.[0]).toEqual([1])
  })

  it('answers 503 log_integrity for a cached timeline once a read found the log damaged', async () => {
    const { service } = await boot()
    const damaged = await service.start(startInputAt(clock.now()))
    await service.end(endInputAt(clock.now(), damaged.output.session_id))
    const other = await service.start(startInputAt(clock.now()))
    await service.end(endInputAt(clock.now(), other.output.session_id))
    const app = createSessionManagerApp({
      sessions: () => service,
      config: { tokens: new Map(), bodyLimitBytes: 16 * 1024 },
      logger: { error() {} },
    })
    const path = `/sessions/${damaged.output.session_id}/timeline`
    expect((await app.request(path)).status).toBe(200) // now cached
    const integrity = () =>
      new StoreUnavailableError('event log is damaged at events-000001.jsonl:1', LOG_INTEGRITY, {
        cause: new LogCorruptError('events-000001.jsonl', 1, 'hash mismatch'),
      })
    // Another session's read finds the damage; the cached session's lines are in the same file.
    vi.spyOn(store, 'read').mockRejectedValue(integrity())
    expect((await app.request(`/sessions/${other.output.session_id}/timeline`)).status).toBe(503)
    const res = await app.request(path)
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ error: 'log_integrity' })
  })

  it('bypasses the timeline cache while the store reports a scrub mismatch', async () => {
    const { service } = await boot()
    const { output } = await service.start(startInputAt(clock.now()))
    await service.end(endInputAt(clock.now(), output.session_id))
    await service.timeline(output.session_id) // now cached
    Object.assign(store, { integrityProblem: 'event log segment events-000001.jsonl:1 no longer matches' })
    const reads = vi.spyOn(store, 'read').mockRejectedValue(
      new StoreUnavailableError('event log is damaged', LOG_INTEGRITY, {
        cause: new LogCorruptError('events-000001.jsonl', 1, 'hash mismatch'),
      }),
    )
    await expect(service.timeline(output.session_id)).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(reads).toHaveBeenCalled()
    // Cleared, not just bypassed: once the mismatch is gone the session is read again, not served stale.
    Object.assign(store, { integrityProblem: undefined })
    reads.mockRestore()
    const page = await service.timeline(output.session_id)
    expect(page?.events.map((e) => e.event)).toEqual(['session.start', 'session.end'])
  })

  it('keeps at most timelineCacheBytes bytes, dropping the least recently read sessions', async () => {
    const ids: string[] = []
    const { service: measuring, repository: measured } = await boot()
    // Each session has 2 events of about the same size; one more session than fits.
    for (let i = 0; i <= 3; i++) {
      const { output } = await measuring.start(startInputAt(clock.now()))
      await measuring.end(endInputAt(clock.now(), output.session_id))
      ids.push(output.session_id)
    }
    await measuring.timeline(ids[0]!)
    const sessionBytes = measured.timelineCachedBytes
    expect(sessionBytes).toBeGreaterThan(100)
    const { service, repository } = await boot(undefined, undefined, {
      timelineCacheBytes: Math.floor(sessionBytes * 3.5),
    })
    for (const id of ids) await service.timeline(id)
    expect(repository.timelineCachedBytes).toBeLessThanOrEqual(sessionBytes * 3.5)
    const reads = vi.spyOn(store, 'read')
    await service.timeline(ids.at(-1)!)
    expect(reads).not.toHaveBeenCalled()
    await service.timeline(ids[0]!)
    expect(reads).toHaveBeenCalled()
  })

  it('keeps the cached bytes under the cap however many sessions are read', async () => {
    const cap = 4096
    const { service, repository } = await boot(undefined, undefined, { timelineCacheBytes: cap })
    for (let i = 0; i < 60; i++) {
      const { output } = await service.start(
        startInputAt(clock.now(), { performer_id: `performer-${'x'.repeat(200)}` }),
      )
      clock.advance(1)
      await service.touch(endInputAt(clock.now(), output.session_id))
      await service.end(endInputAt(clock.now(), output.session_id))
      await service.timeline(output.session_id)
      expect(repository.timelineCachedBytes).toBeLessThanOrEqual(cap)
    }
    expect(repository.timelineCachedBytes).toBeGreaterThan(cap / 2)
  })

  it('does not cache a session over the per-session cap: it is read from the store each time', async () => {
    const { service, repository } = await boot(undefined, undefined, { timelineCacheSessionBytes: 1000 })
    const { output } = await service.start(startInputAt(clock.now()))
    for (let i = 0; i < 10; i++) {
      clock.advance(1)
      await service.touch(endInputAt(clock.now(), output.session_id))
    }
    await service.end(endInputAt(clock.now(), output.session_id))
    await service.timeline(output.session_id)
    expect(repository.timelineCachedBytes).toBe(0)
    const reads = vi.spyOn(store, 'read')
    expect((await service.timeline(output.session_id))?.events).toHaveLength(12)
    expect(reads).toHaveBeenCalled()
  })
})
