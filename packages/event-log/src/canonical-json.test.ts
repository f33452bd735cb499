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
})
