import { describe, expect, it } from 'vitest'
import { FORBIDDEN_KEYS, MAX_JSON_DEPTH, parseJsonBody } from './json-body.js'

const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`

describe('parseJsonBody', () => {
  it('returns the parsed value of a valid body', () => {
    const body = { schema_version: '1.1', metadata: { device: 'tablet' }, list: [1, 'two', null] }
    expect(parseJsonBody(JSON.stringify(body))).toEqual({ ok: true, value: body })
  })

  it('accepts JSON scalars (schema validation rejects them later)', () => {
    expect(parseJsonBody('42')).toEqual({ ok: true, value: 42 })
    expect(parseJsonBody('null')).toEqual({ ok: true, value: null })
  })

  it.each([
    ['an empty body', ''],
    ['a truncated object', '{"user_id": "u"'],
    ['single quotes', "{'user_id': 'u'}"],
    ['a trailing comma', '{"user_id": "u",}'],
    ['form encoding', 'user_id=u'],
  ])('rejects %s as malformed_json', (_label, text) => {
    const result = parseJsonBody(text)
    expect(result).toMatchObject({ ok: false, error: 'malformed_json' })
    if (!result.ok) expect(result.message).toMatch(/not valid JSON/)
  })

  it('never echoes raw body bytes: the message quotes a short excerpt with non-ASCII escaped', () => {
    const gzip = `\u001f\u008b\u0008\u0000${'\u00ff\u0003'.repeat(200)}`
    const result = parseJsonBody(gzip)
    expect(result).toMatchObject({ ok: false, error: 'malformed_json' })
    if (result.ok) return
    expect(result.message).toMatch(/^The request body is not valid JSON/)
    const unprintable = [...result.message].filter((ch) => (ch < ' ' || ch > '~') && ch !== '…')
    expect(unprintable).toEqual([])
    expect(result.message).toContain('\\u001f\\u008b')
    expect(result.message.length).toBeLessThan(250)
  })

  it('names the position of the error and quotes at most a short excerpt from there', () => {
    const body = `{"user_id": "u", ${'x'.repeat(1000)}}`
    const result = parseJsonBody(body)
    if (result.ok) throw new Error('expected malformed_json')
    expect(result.message).toMatch(/at position 17: "x{24}…"/)
    expect(result.message.length).toBeLessThan(120)
  })

  it('forbids exactly __proto__, constructor and prototype', () => {
    expect([...FORBIDDEN_KEYS].sort()).toEqual(['__proto__', 'constructor', 'prototype'])
  })

  it.each([...FORBIDDEN_KEYS])('rejects the key %s at the top level', (key) => {
    const result = parseJsonBody(`{"user_id":"u",${JSON.stringify(key)}:{"admin":true}}`)
    expect(result).toMatchObject({ ok: false, error: 'forbidden_key' })
    if (!result.ok) expect(result.message).toContain(key)
  })

  it.each([...FORBIDDEN_KEYS])('rejects the key %s nested inside objects and arrays', (key) => {
    const text = `{"metadata":{"list":[1,{"deep":[{${JSON.stringify(key)}:1}]}]}}`
    expect(parseJsonBody(text)).toMatchObject({ ok: false, error: 'forbidden_key' })
  })

  it('allows forbidden words as values and inside longer keys', () => {
    const text = '{"note":"__proto__","constructor_name":"x","prototype_id":1}'
    expect(parseJsonBody(text)).toMatchObject({ ok: true })
  })

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting`, () => {
    expect(parseJsonBody(nestedArrays(MAX_JSON_DEPTH))).toMatchObject({ ok: true })
    expect(parseJsonBody(nestedObjects(MAX_JSON_DEPTH))).toMatchObject({ ok: true })
  })

  it(`rejects ${MAX_JSON_DEPTH + 1} levels of nesting as malformed_json`, () => {
    for (const text of [nestedArrays(MAX_JSON_DEPTH + 1), nestedObjects(MAX_JSON_DEPTH + 1)]) {
      const result = parseJsonBody(text)
      expect(result).toMatchObject({ ok: false, error: 'malformed_json' })
      if (!result.ok) expect(result.message).toContain(`deeper than ${MAX_JSON_DEPTH}`)
    }
  })

  it('rejects hostile nesting (10,000 levels) without throwing', () => {
    expect(parseJsonBody(nestedArrays(10_000))).toMatchObject({ ok: false, error: 'malformed_json' })
  })
})
