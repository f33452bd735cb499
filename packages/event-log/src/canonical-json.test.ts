import { describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, { d: null, c: 'x' }] })).toBe(
      '{"a":[true,{"c":"x","d":null}],"b":1}',
    )
  })

  it('orders keys by UTF-16 code units, not locale', () => {
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '😀': 4, ｚ: 5 })).toBe('{"Z":3,"z":2,"é":1,"😀":4,"ｚ":5}')
  })

  it('escapes strings exactly like JSON.stringify', () => {
    const value = 'quote " backslash \\ newline \n tab \t nul \u0000 lone \ud800 emoji 😀'
    expect(canonicalJson({ value })).toBe(`{"value":${JSON.stringify(value)}}`)
  })

  it('follows JSON.stringify for undefined, non-finite numbers and toJSON', () => {
    const date = new Date('2026-03-01T12:00:00.000Z')
    expect(canonicalJson({ u: undefined, n: Number.NaN, a: [undefined, Infinity], d: date })).toBe(
      '{"a":[null,null],"d":"2026-03-01T12:00:00.000Z","n":null}',
    )
  })

  it('gives the same text for objects that differ only in key order', () => {
    expect(canonicalJson({ x: { q: 1, p: 2 }, y: 3 })).toBe(canonicalJson({ y: 3, x: { p: 2, q: 1 } }))
  })

  it('throws on cycles and BigInt instead of overflowing the stack', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => canonicalJson(cyclic)).toThrow(TypeError)
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError)
  })

  it('orders digit keys, null-prototype objects and __proto__ keys by code units as well', () => {
    expect(canonicalJson({ 10: 'a', 9: 'b', a: { 2: 0, '-1': 1 } })).toBe(
      '{"10":"a","9":"b","a":{"-1":1,"2":0}}',
    )
    const bare = Object.assign(Object.create(null) as object, { b: 1, a: 2 })
    expect(canonicalJson({ bare })).toBe('{"bare":{"a":2,"b":1}}')
    expect(canonicalJson(JSON.parse('{"z":1,"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1},"z":1}')
  })

  it('gives the same text as a plain reference implementation on generated records', () => {
    const reference = (value: unknown): string | undefined => {
      if (
        value !== null &&
        typeof value === 'object' &&
        'toJSON' in value &&
        typeof value.toJSON === 'function'
      )
        return reference(value.toJSON())
      if (value === null || typeof value !== 'object') return JSON.stringify(value)
      if (Array.isArray(value)) return `[${value.map((item) => reference(item) ?? 'null').join(',')}]`
      const members = Object.keys(value)
        .sort()
        .map((key) => [key, reference((value as Record<string, unknown>)[key])] as const)
        .filter(([, text]) => text !== undefined)
      return `{${members.map(([key, text]) => `${JSON.stringify(key)}:${text}`).join(',')}}`
    }
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const keys = ['a', 'B', '1', '10', 'é', '😀', 'session_id', 'seq', '-2', 'toJSONish', '']
    const generate = (depth: number): unknown => {
      const r = next()
      if (depth > 3 || r < 0.3)
        return [1.5, -0, 'x\u2028"', null, true, undefined, Number.NaN][Math.floor(next() * 7)]
      if (r < 0.4) return new Date(Math.floor(next() * 2e12))
      if (r < 0.55) return Array.from({ length: Math.floor(next() * 4) }, () => generate(depth + 1))
      const out: Record<string, unknown> = {}
      for (let i = Math.floor(next() * 6); i > 0; i--)
        out[keys[Math.floor(next() * keys.length)]!] = generate(depth + 1)
      return out
    }
    for (let i = 0; i < 500; i++) {
      const value = { record: generate(0) }
      expect(canonicalJson(value)).toBe(reference(value))
    }
  })
})
