import { describe, expect, it } from 'vitest'
import {
  classifyContentType,
  decideSessionId,
  extractSessionIdFromBody,
  extractSessionIdFromHeaders,
  extractSessionIdFromQuery,
  judgeVerifyResult,
  parseGuardedBody,
  resolveGuardConfig,
  SESSION_ID_HEADER,
  sessionFetch,
  withSessionId,
} from './index.js'
import { ACTIVE, OTHER } from './test-support/contract.js'

describe('extractors', () => {
  it('reads the header from Fetch Headers and from Node header objects', () => {
    expect(extractSessionIdFromHeaders(new Headers({ 'X-Session-Id': ACTIVE }))).toBe(ACTIVE)
    expect(extractSessionIdFromHeaders({ 'x-session-id': ACTIVE })).toBe(ACTIVE)
    expect(extractSessionIdFromHeaders({ 'x-session-id': [ACTIVE, OTHER] })).toBe(`${ACTIVE}, ${OTHER}`)
    expect(extractSessionIdFromHeaders({})).toBeUndefined()
  })

  it('reads the query parameter from a full URL or a request target, ignoring the fragment', () => {
    expect(extractSessionIdFromQuery(`http://x/a?b=1&session_id=${ACTIVE}#session_id=zz`)).toBe(ACTIVE)
    expect(extractSessionIdFromQuery(`/a?session_id=${ACTIVE}`)).toBe(ACTIVE)
    expect(extractSessionIdFromQuery('/a?x_session_id=1')).toBeUndefined()
    expect(extractSessionIdFromQuery('/a')).toBeUndefined()
    // Broken percent-encoding decodes to U+FFFD instead of throwing; the guard then calls it invalid.
    expect(decideSessionId({ query: extractSessionIdFromQuery('/a?session_id=%E0%A4%A') })).toEqual({
      ok: false,
      code: 'session_id_invalid',
    })
  })

  it('reads the body field without throwing on odd bodies', () => {
    expect(extractSessionIdFromBody({ session_id: ACTIVE })).toBe(ACTIVE)
    expect(extractSessionIdFromBody({ session_id: null })).toBe('null')
    expect(extractSessionIdFromBody({ session_id: { toString: 1 } })).toBe('[object]')
    expect(extractSessionIdFromBody({ session_id: [ACTIVE] })).toBe('[array]')
    expect(extractSessionIdFromBody([{ session_id: ACTIVE }])).toBeUndefined()
    expect(extractSessionIdFromBody('text')).toBeUndefined()
    expect(extractSessionIdFromBody(Object.create({ session_id: ACTIVE }))).toBeUndefined()
  })
})

describe('decideSessionId', () => {
  it('accepts one valid id, or several equal ones', () => {
    expect(decideSessionId({ header: ACTIVE })).toEqual({ ok: true, id: ACTIVE })
    expect(decideSessionId({ header: ACTIVE, body: ACTIVE, query: ACTIVE })).toEqual({ ok: true, id: ACTIVE })
  })

  it('reports missing, conflicting and invalid ids by code', () => {
    expect(decideSessionId({})).toEqual({ ok: false, code: 'session_id_missing' })
    expect(decideSessionId({ header: '', query: '' })).toEqual({ ok: false, code: 'session_id_missing' })
    expect(decideSessionId({ body: ACTIVE, query: OTHER })).toEqual({
      ok: false,
      code: 'session_id_conflict',
    })
    expect(decideSessionId({ header: 'abc', body: 'abc' })).toEqual({ ok: false, code: 'session_id_invalid' })
    expect(decideSessionId({ header: `${ACTIVE}\n` })).toEqual({ ok: false, code: 'session_id_invalid' })
    expect(decideSessionId({ header: `8${ACTIVE.slice(1)}` })).toEqual({
      ok: false,
      code: 'session_id_invalid',
    })
  })
})

describe('body handling', () => {
  it('classifies JSON media types and refuses non-UTF-8 charsets', () => {
    expect(classifyContentType('application/json')).toBe('json')
    expect(classifyContentType('Application/JSON; charset=UTF-8')).toBe('json')
    expect(classifyContentType('application/merge-patch+json')).toBe('json')
    expect(classifyContentType('application/json; charset="iso-8859-1"')).toBe('json-unsupported-charset')
    expect(classifyContentType('text/json')).toBe('not-json')
    expect(classifyContentType(undefined)).toBe('not-json')
  })

  it('rejects reserved keys and treats an empty body or a BOM like express.json() does', () => {
    const forbidden = parseGuardedBody('{"__proto__":{"x":1}}')
    expect(forbidden.ok === false && forbidden.rejection.body.error).toBe('forbidden_key')
    expect(parseGuardedBody(' \n')).toEqual({ ok: true, value: undefined })
    expect(parseGuardedBody('\uFEFF{"a":1}')).toEqual({ ok: true, value: { a: 1 } })
  })
})

describe('resolveGuardConfig', () => {
  it('matches exempt paths exactly or by pattern', () => {
    const config = resolveGuardConfig({
      sources: ['header'],
      exemptPaths: ['/healthz', /^\/metrics$/],
      maxBodyBytes: 10,
      verify: undefined,
    })
    expect([config.isExempt('/healthz'), config.isExempt('/metrics'), config.isExempt('/healthz2')]).toEqual([
      true,
      true,
      false,
    ])
    expect([config.readHeader, config.readBody, config.readQuery]).toEqual([true, false, false])
  })
})

describe('judgeVerifyResult', () => {
  it('accepts only true and maps codes to their statuses', () => {
    expect(judgeVerifyResult(true)).toBeUndefined()
    expect(judgeVerifyResult('session_not_found')?.status).toBe(404)
    expect(judgeVerifyResult({ code: 'session_ended', details: { reason: 'timeout' } })).toMatchObject({
      status: 409,
      body: { error: 'session_ended', details: { reason: 'timeout' } },
    })
  })

  it('throws when verify answers nothing, so a buggy hook never lets a request through', () => {
    expect(() => judgeVerifyResult(undefined as unknown as true)).toThrow(TypeError)
    expect(() => judgeVerifyResult('ok' as unknown as true)).toThrow(TypeError)
  })
})

describe('propagation', () => {
  it('sets the header on Headers in place', () => {
    const headers = new Headers({ accept: 'application/json' })
    expect(withSessionId(headers, ACTIVE)).toBe(headers)
    expect(headers.get(SESSION_ID_HEADER)).toBe(ACTIVE)
  })

  it('returns a new RequestInit and leaves the original untouched', () => {
    const init: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' } }
    const out = withSessionId(init, ACTIVE)
    expect(new Headers(out.headers).get(SESSION_ID_HEADER)).toBe(ACTIVE)
    expect(new Headers(out.headers).get('content-type')).toBe('application/json')
    expect(out.method).toBe('POST')
    expect(init.headers).toEqual({ 'content-type': 'application/json' })
    expect(new Headers(withSessionId(undefined, ACTIVE).headers).get(SESSION_ID_HEADER)).toBe(ACTIVE)
  })

  it('refuses an invalid id or a different id already on the headers', () => {
    expect(() => withSessionId(undefined, 'nope')).toThrow(TypeError)
    expect(() => withSessionId({ headers: { 'x-session-id': OTHER } }, ACTIVE)).toThrow(/different session/)
    expect(() => sessionFetch('nope')).toThrow(TypeError)
  })

  it('binds fetch to a session id and keeps the headers of a Request input', async () => {
    const seen: Headers[] = []
    const fake = async (input: string | URL | Request, init?: RequestInit) => {
      seen.push(new Headers(init?.headers))
      return new Response(String(input))
    }
    const fetchInSession = sessionFetch(ACTIVE, fake)
    await fetchInSession('http://127.0.0.1/a', { headers: { 'x-trace': '1' } })
    await fetchInSession(new Request('http://127.0.0.1/b', { headers: { 'x-from-request': '1' } }))
    expect(seen.map((h) => h.get(SESSION_ID_HEADER))).toEqual([ACTIVE, ACTIVE])
    expect(seen[0]?.get('x-trace')).toBe('1')
    expect(seen[1]?.get('x-from-request')).toBe('1')
  })
})

describe('parseGuardedBody on blank bodies', () => {
  it('treats exactly what String.prototype.trim removes as no body, and anything else as JSON text', () => {
    for (const blank of [
      '',
      ' ',
      '\n\t\r ',
      '\u00a0',
      '\u2028\u2029',
      '\ufeff',
      '\ufeff \u3000',
      '\u1680\u205f',
    ]) {
      expect(blank.trim()).toBe('')
      expect(parseGuardedBody(blank)).toEqual({ ok: true, value: undefined })
    }
    expect(parseGuardedBody(' \u00a0{"a":1}\n')).toEqual({
      ok: false,
      rejection: expect.objectContaining({ status: 400 }),
    })
    expect(parseGuardedBody(' \n{"a":1}\n')).toEqual({ ok: true, value: { a: 1 } })
    expect(parseGuardedBody('\u200b')).toMatchObject({ ok: false, rejection: { status: 400 } })
  })
})
