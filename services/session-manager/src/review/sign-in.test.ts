import { describe, expect, it } from 'vitest'
import { type Role, tokenDigest } from '../config.js'
import { checkReviewToken, FailedSignIns, ReviewSignIns } from './sign-in.js'

describe('checkReviewToken', () => {
  const tokens = new Map<string, Set<Role>>([
    [tokenDigest('caller-token-0000001'), new Set<Role>(['caller'])],
    [tokenDigest('auditor-token-000001'), new Set<Role>(['auditor'])],
  ])
  const reviewers = new Set([tokenDigest('reviewer-token-00001')])

  it('lets reviewer and auditor tokens in, refuses caller tokens and unknown ones apart', () => {
    expect(checkReviewToken(tokens, reviewers, 'reviewer-token-00001')).toBe('reviewer')
    expect(checkReviewToken(tokens, reviewers, 'auditor-token-000001')).toBe('reviewer')
    expect(checkReviewToken(tokens, reviewers, 'caller-token-0000001')).toBe('caller')
    expect(checkReviewToken(tokens, reviewers, 'something-else-00001')).toBe('unknown')
    expect(checkReviewToken(tokens, reviewers, '')).toBe('unknown')
  })
})

describe('ReviewSignIns', () => {
  it('expires a sign-in after the idle time, slides it on use, and ends it at the maximum', () => {
    const signIns = new ReviewSignIns({ idleMs: 100, maxMs: 250, max: 10 })
    const id = signIns.create(0)
    expect(signIns.touch(id, 90)).toBe(true)
    expect(signIns.touch(id, 180)).toBe(true)
    expect(signIns.touch(id, 260)).toBe(false)
    const idle = signIns.create(0)
    expect(signIns.touch(idle, 101)).toBe(false)
    expect(signIns.touch('made-up', 0)).toBe(false)
  })

  it('keeps at most max sign-ins, dropping the oldest, and forgets one signed out', () => {
    const signIns = new ReviewSignIns({ idleMs: 1000, maxMs: 1000, max: 2 })
    const [a, b, c] = [signIns.create(0), signIns.create(0), signIns.create(0)]
    expect(signIns.size).toBe(2)
    expect(signIns.touch(a, 1)).toBe(false)
    signIns.delete(b)
    expect(signIns.touch(b, 1)).toBe(false)
    expect(signIns.touch(c, 1)).toBe(true)
  })
})

describe('FailedSignIns', () => {
  it('allows the configured failures per window, then says how long to wait', () => {
    const limiter = new FailedSignIns({ attempts: 3, windowMs: 60_000, maxClients: 10 })
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('a', i)).toBe(0)
      limiter.fail('a', i)
    }
    expect(limiter.retryAfter('a', 1000)).toBe(59)
    expect(limiter.retryAfter('b', 1000)).toBe(0)
    expect(limiter.retryAfter('a', 60_001)).toBe(0)
  })

  it('tracks a bounded number of clients', () => {
    const limiter = new FailedSignIns({ attempts: 1, windowMs: 60_000, maxClients: 2 })
    for (const client of ['a', 'b', 'c']) limiter.fail(client, 0)
    expect(limiter.retryAfter('a', 1)).toBe(0)
    expect(limiter.retryAfter('c', 1)).toBeGreaterThan(0)
  })
})
