import { describe, expect, it } from 'vitest'
import { type GuardConfig, resolveGuardConfig, type SessionIdSource } from './index.js'

type Raw = Parameters<typeof resolveGuardConfig<unknown>>[0]

const VALID: Raw = { sources: ['header'], exemptPaths: [], maxBodyBytes: 1024, verify: undefined }

function resolve(overrides: Record<string, unknown>): GuardConfig<unknown> {
  return resolveGuardConfig({ ...VALID, ...overrides } as Raw)
}

describe('resolveGuardConfig refuses a bad option with a TypeError naming it', () => {
  it.each([
    ['no sources', { sources: [] }, /`sources` must list at least one of "header", "body", "query"/],
    ['sources that are not an array', { sources: 'header' }, /`sources` must list at least one/],
    ['an unknown source', { sources: ['header', 'cookie'] }, /unknown source "cookie" in `sources`/],
    ['a source listed twice', { sources: ['body', 'body'] }, /`sources` lists a source twice/],
    ['a zero body limit', { maxBodyBytes: 0 }, /`maxBodyBytes` must be a positive integer/],
    ['a fractional body limit', { maxBodyBytes: 1.5 }, /`maxBodyBytes` must be a positive integer/],
    ['a verify that is not a function', { verify: 'yes' }, /`verify` must be a function/],
    ['exemptPaths that are a string', { exemptPaths: '/healthz' }, /`exemptPaths` must be an array/],
    ['exemptPaths that are an object', { exemptPaths: {} }, /`exemptPaths` must be an array/],
    [
      'a global exempt pattern',
      { exemptPaths: [/^\/health/g] },
      /exempt pattern \/\^\\\/health\/g must not use the g or y flag/,
    ],
    ['a sticky exempt pattern', { exemptPaths: [/^\/health/y] }, /must not use the g or y flag/],
    [
      'an exempt path without a slash',
      { exemptPaths: ['healthz'] },
      /exempt path "healthz" must start with "\/"/,
    ],
    ['an exempt path that is a number', { exemptPaths: [404] }, /exempt path 404 must start with "\/"/],
  ])('%s', (_name, overrides, message) => {
    expect(() => resolve(overrides)).toThrow(TypeError)
    expect(() => resolve(overrides)).toThrow(message)
  })
})

describe('resolveGuardConfig exempt paths', () => {
  it('exempts by pattern alone when no exact path is given', () => {
    const config = resolve({ exemptPaths: [/^\/health/] })
    expect([config.isExempt('/healthz'), config.isExempt('/health/live'), config.isExempt('/infer')]).toEqual(
      [true, true, false],
    )
  })

  it('answers false, not just something falsy, when nothing is exempt', () => {
    const config = resolve({})
    expect(config.isExempt('/healthz')).toBe(false)
    expect(config.isExempt('/')).toBe(false)
  })

  it('reads exactly the sources it was given', () => {
    const read = (sources: SessionIdSource[]) => {
      const c = resolve({ sources })
      return [c.readHeader, c.readBody, c.readQuery]
    }
    expect(read(['body', 'query'])).toEqual([false, true, true])
    expect(read(['query'])).toEqual([false, false, true])
  })
})
