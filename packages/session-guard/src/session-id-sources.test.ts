import { ULID_PATTERN } from '@care/schemas'
import { describe, expect, it } from 'vitest'
import { decideSessionId, extractSessionIdFromBody, extractSessionIdFromQuery, isSessionId } from './index.js'
import { ACTIVE, OTHER } from './test-support/contract.js'

describe('isSessionId', () => {
  it('accepts only strings, not values that merely stringify to a ULID', () => {
    expect(isSessionId(ACTIVE)).toBe(true)
    expect(isSessionId([ACTIVE])).toBe(false)
    expect(isSessionId({ toString: () => ACTIVE })).toBe(false)
    expect(isSessionId(undefined)).toBe(false)
  })

  it("agrees with the schemas' ULID_PATTERN on every character at every position, and on length", () => {
    const pattern = new RegExp(ULID_PATTERN)
    const candidates = ['', ACTIVE.slice(1), `${ACTIVE}0`, ACTIVE.toLowerCase(), `8${ACTIVE.slice(1)}`]
    const odd = ['é', 'Ａ', '\u0130', '\u{1F600}', '\u0000']
    for (let position = 0; position < 26; position++) {
      const chars = [...Array.from({ length: 128 }, (_, code) => String.fromCharCode(code)), ...odd]
      for (const char of chars) candidates.push(ACTIVE.slice(0, position) + char + ACTIVE.slice(position + 1))
    }
    let accepted = 0
    for (const candidate of candidates) {
      expect(isSessionId(candidate), JSON.stringify(candidate)).toBe(pattern.test(candidate))
      if (pattern.test(candidate)) accepted += 1
    }
    // 8 first characters plus 32 for each of the other 25 positions (the unchanged id counted each time).
    expect(accepted).toBe(8 + 25 * 32)
  })
})

describe('extractSessionIdFromQuery', () => {
  it('reads only what follows the "?", never a session_id that is part of the path', () => {
    expect(extractSessionIdFromQuery(`/a&session_id=${ACTIVE}`)).toBeUndefined()
    expect(extractSessionIdFromQuery(`session_id=${ACTIVE}`)).toBeUndefined()
    expect(extractSessionIdFromQuery(`/?session_id=${ACTIVE}`)).toBe(ACTIVE)
    expect(extractSessionIdFromQuery(`?session_id=${ACTIVE}`)).toBe(ACTIVE)
  })

  it('stops at the fragment when the parameter is the first one', () => {
    expect(extractSessionIdFromQuery(`/a?session_id=${ACTIVE}#top`)).toBe(ACTIVE)
    expect(extractSessionIdFromQuery(`/a?session_id=${ACTIVE}#session_id=${OTHER}`)).toBe(ACTIVE)
  })

  it('joins a repeated parameter with ", ", so two halves of an id never pass as one', () => {
    const halves = `/a?session_id=${ACTIVE.slice(0, 13)}&session_id=${ACTIVE.slice(13)}`
    expect(extractSessionIdFromQuery(halves)).toBe(`${ACTIVE.slice(0, 13)}, ${ACTIVE.slice(13)}`)
    expect(decideSessionId({ query: extractSessionIdFromQuery(halves) })).toEqual({
      ok: false,
      code: 'session_id_invalid',
    })
  })

  it('reads a percent-encoded parameter name as a query parser does, so it cannot hide a conflict', () => {
    expect(extractSessionIdFromQuery(`/a?session%5Fid=${OTHER}`)).toBe(OTHER)
    expect(extractSessionIdFromQuery(`/a?%73ession_id=${OTHER}`)).toBe(OTHER)
    expect(
      decideSessionId({ header: ACTIVE, query: extractSessionIdFromQuery(`/a?session%5Fid=${OTHER}`) }),
    ).toEqual({ ok: false, code: 'session_id_conflict' })
    expect(extractSessionIdFromQuery('/a?x=%20')).toBeUndefined()
  })
})

describe('extractSessionIdFromBody', () => {
  it('treats a null body or a field set to undefined as absent, without throwing', () => {
    expect(extractSessionIdFromBody(null)).toBeUndefined()
    expect(extractSessionIdFromBody({ session_id: undefined })).toBeUndefined()
    expect(decideSessionId({ body: extractSessionIdFromBody({ session_id: undefined }) })).toEqual({
      ok: false,
      code: 'session_id_missing',
    })
  })

  it('describes a number or boolean id by its JSON text, so it is refused as invalid, not missing', () => {
    expect(extractSessionIdFromBody({ session_id: 123 })).toBe('123')
    expect(extractSessionIdFromBody({ session_id: false })).toBe('false')
    expect(extractSessionIdFromBody({ session_id: true })).toBe('true')
    expect(decideSessionId({ body: extractSessionIdFromBody({ session_id: 0 }) })).toEqual({
      ok: false,
      code: 'session_id_invalid',
    })
  })
})
