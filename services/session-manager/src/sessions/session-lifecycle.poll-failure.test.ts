import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createIdFactory } from '../ids/id-factory.js'
import { EmbeddedSessionRepository } from '../store/embedded-session-repository.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { SessionLifecycleService } from './session-lifecycle.js'
import { startInputAt, TEST_POLICY } from './test-support/inputs.js'
import { MemoryEventStore } from './test-support/memory-event-store.js'

// A repository that cannot name its next deadline (like PostgreSQL) is polled; when the poll itself
// fails (the database is down), the lifecycle logs it and polls again, and no timeout is lost.
const T0 = Date.parse('2026-03-01T12:00:00.000Z')

describe('polling for expired sessions when the claim itself fails', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      now: T0,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('logs the failed poll, keeps polling, and ends the session at its true deadline once the claim works', async () => {
    const embedded = await EmbeddedSessionRepository.open(new MemoryEventStore().opener())
    let claimFails = false
    const repository = new Proxy(embedded, {
      get(target, key) {
        if (key === 'tracksExpiry') return false
        if (key === 'claimExpired')
          return (now: number, limit: number) =>
            claimFails
              ? Promise.reject(new StoreUnavailableError('database down', 'UNAVAILABLE'))
              : target.claimExpired(now, limit)
        return Reflect.get(target, key, target)
      },
    })
    const logged: { fields: object; message: string }[] = []
    const logger = {
      info() {},
      warn() {},
      error: (fields: object, message: string) => logged.push({ fields, message }),
    }
    const policy = { ...TEST_POLICY, idleTimeoutMs: 1000 }
    const service = new SessionLifecycleService(repository, { policy, newId: createIdFactory(), logger })
    await service.recover()
    const { output } = await service.start(startInputAt(Date.now()))
    claimFails = true
    await vi.advanceTimersByTimeAsync(1500)
    expect((await service.describe(output.session_id))?.status).toBe('open')
    expect(logged.length).toBeGreaterThan(0)
    expect(logged[0]).toEqual({
      fields: { err: expect.any(StoreUnavailableError) },
      message: 'could not look for expired sessions; will retry',
    })
    claimFails = false
    await vi.advanceTimersByTimeAsync(250)
    expect(await service.describe(output.session_id)).toMatchObject({
      status: 'ended',
      end_reason: 'idle_timeout',
      ended_at: new Date(T0 + 1000).toISOString(),
    })
    await service.close()
  })

  it('survives a failed poll without a logger (no unhandled rejection) and still ends the session', async () => {
    const embedded = await EmbeddedSessionRepository.open(new MemoryEventStore().opener())
    let claimFails = true
    const repository = new Proxy(embedded, {
      get(target, key) {
        if (key === 'tracksExpiry') return false
        if (key === 'claimExpired')
          return (now: number, limit: number) =>
            claimFails
              ? Promise.reject(new StoreUnavailableError('database down', 'UNAVAILABLE'))
              : target.claimExpired(now, limit)
        return Reflect.get(target, key, target)
      },
    })
    const policy = { ...TEST_POLICY, idleTimeoutMs: 1000 }
    const service = new SessionLifecycleService(repository, { policy, newId: createIdFactory() })
    claimFails = false
    await service.recover()
    const { output } = await service.start(startInputAt(Date.now()))
    claimFails = true
    await vi.advanceTimersByTimeAsync(1500)
    claimFails = false
    await vi.advanceTimersByTimeAsync(250)
    expect((await service.describe(output.session_id))?.status).toBe('ended')
    await service.close()
  })
})
