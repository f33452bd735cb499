import fc from 'fast-check'

/**
 * Strings an attacker or a broken client sends: control characters, CR/LF that would split a JSONL
 * line, Unicode line separators, lone surrogates, markup, and very long values. `extra` adds
 * route-specific payloads (for example a forged event line).
 */
export function hostileStrings(extra: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom(
      '\u001b[31mred\u001b[0m',
      '\u0000',
      '\u2028\u2029',
      '\ud800',
      '</script>',
      '$' + '{jndi:ldap://x}',
      'a'.repeat(1025),
      ...extra,
    ),
    fc.integer({ min: 1, max: 40_000 }).map((n) => 'x'.repeat(n)),
  )
}

/** Any JSON-ish value for a field: wrong types, huge arrays, prototype-polluting keys, hostile strings. */
export function hostileValues(strings: fc.Arbitrary<string> = hostileStrings()): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    strings,
    fc.constantFrom(null, true, 0, -1, 1e308, [], {}),
    fc.array(fc.nat(), { maxLength: 5000 }),
    fc.dictionary(
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'device', 'x'),
      fc.jsonValue({ maxDepth: 1 }),
    ),
  )
}

/** JSON text nested up to 6,000 levels deep (arrays or objects), to probe parser recursion limits. */
export const deepNesting: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 6000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => `${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`)
