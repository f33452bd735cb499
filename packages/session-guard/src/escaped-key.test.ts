import { seededRandom } from '@care/test-kit'
import { describe, expect, it } from 'vitest'
import { ACTIVE, OTHER, type StartHarness } from './test-support/contract.js'
import { expressHarness } from './test-support/express-harness.js'
import { honoHarness, honoNodeServerHarness } from './test-support/hono-harness.js'

/** `text` with each character, at random, written as a JSON `\uXXXX` escape (hex digits in either case). */
function escapeSome(text: string, next: () => number): string {
  let out = ''
  for (const ch of text) {
    if (next() < 0.5) {
      out += ch
      continue
    }
    const hex = ch.charCodeAt(0).toString(16).padStart(4, '0')
    out += `\\u${next() < 0.5 ? hex : hex.toUpperCase()}`
  }
  return out
}

/**
 * Bodies whose top-level `session_id` key (and, for accepted cases, value) is spelled with random
 * `\u` escapes, placed among other keys. The guard must see through every spelling, whatever an
 * optimisation might look for in the raw text.
 */
function cases(seed: number, count: number) {
  const next = seededRandom(seed)
  return Array.from({ length: count }, (_, i) => {
    let key = escapeSome('session_id', next)
    if (key === 'session_id') key = 'session\\u005fid'
    const conflicting = i % 2 === 0
    const value = conflicting ? OTHER : escapeSome(ACTIVE, next)
    const before = next() < 0.5 ? '"text":"a \\"quoted\\" note",' : ''
    const after = next() < 0.5 ? ',"n":[1,{"session_id":"nested, not read"}]' : ''
    return { body: `{${before}"${key}":"${value}"${after}}`, conflicting }
  })
}

const ADAPTERS: readonly [string, StartHarness][] = [
  ['hono, app.request()', honoHarness('middleware')],
  ['hono on @hono/node-server 2.x', honoNodeServerHarness(2, 'middleware')],
  ['hono guarded(handler) on @hono/node-server 2.x', honoNodeServerHarness(2, 'handler')],
  ['express, no body parser', expressHarness('no parser')],
]

describe.each(ADAPTERS)('a session_id key spelled with \\u escapes (%s)', (_name, start) => {
  it('conflicts with a different header id, and agrees with the same id, for every spelling', async () => {
    const harness = await start({})
    try {
      for (const { body, conflicting } of cases(20261130, 40)) {
        const res = await harness.request({
          method: 'POST',
          path: '/work',
          headers: { 'content-type': 'application/json', 'x-session-id': ACTIVE },
          body,
        })
        expect({ body, status: res.status, json: res.json }).toMatchObject({
          body,
          status: conflicting ? 400 : 200,
          json: conflicting ? { error: 'session_id_conflict' } : { session_id: ACTIVE },
        })
      }
    } finally {
      await harness.close()
    }
  })
})
