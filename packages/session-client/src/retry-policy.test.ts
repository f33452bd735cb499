import { describe, expect, it } from 'vitest'
import { parseRetryAfter, resolveRetryPolicy, retryDelayMs } from './retry-policy.js'

const policy = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1_000 })

describe('retry delays', () => {
  it('take Retry-After in seconds or as an HTTP date, capped at maxDelayMs', () => {
    const now = Date.parse('2026-03-01T12:00:00.000Z')
    expect(parseRetryAfter('2', now)).toBe(2_000)
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:03 GMT', now)).toBe(3_000)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(retryDelayMs(policy, 1, '0')).toBe(0)
    expect(retryDelayMs(policy, 1, '30')).toBe(1_000)
  })

  it('back off exponentially with jitter between half and all of the ceiling, never past maxDelayMs', () => {
    expect(retryDelayMs(policy, 1, null, 0, () => 0)).toBe(50)
    expect(retryDelayMs(policy, 1, null, 0, () => 1)).toBe(100)
    expect(retryDelayMs(policy, 3, null, 0, () => 1)).toBe(400)
    expect(retryDelayMs(policy, 10, null, 0, () => 1)).toBe(1_000)
  })

  it('send once when retries are off', () => {
    expect(resolveRetryPolicy(false).maxAttempts).toBe(1)
    expect(resolveRetryPolicy({ maxAttempts: 0 }).maxAttempts).toBe(1)
  })
})
