/** Keys that would reach an object's prototype chain in naive merge code. Never valid in a record. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

/** Deeper than any CARE record; stops hostile nesting before it costs stack or time. */
export const MAX_JSON_DEPTH = 32

export type JsonBodyResult =
  | { ok: true; value: unknown }
  | { ok: false; error: 'malformed_json' | 'forbidden_key'; message: string }

/**
 * Parses a request body as JSON and rejects reserved keys (`__proto__`, `constructor`,
 * `prototype`) and nesting deeper than {@link MAX_JSON_DEPTH} at any level. Never throws.
 *
 * @example
 * const parsed = parseJsonBody(await request.text())
 * if (!parsed.ok) return c.json(errorResponse(parsed.error).body, 400)
 */
export function parseJsonBody(text: string): JsonBodyResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return {
      ok: false,
      error: 'malformed_json',
      message: `The request body is not valid JSON: ${(err as Error).message}`,
    }
  }
  const problem = findUnsafeStructure(value, 0)
  if (problem)
    return {
      ok: false,
      error: problem === 'depth' ? 'malformed_json' : 'forbidden_key',
      message: describe(problem),
    }
  return { ok: true, value }
}

function describe(problem: string): string {
  return problem === 'depth'
    ? `The request body is nested deeper than ${MAX_JSON_DEPTH} levels.`
    : `The request uses the reserved key "${problem}".`
}

function findUnsafeStructure(value: unknown, depth: number): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  if (depth >= MAX_JSON_DEPTH) return 'depth'
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = findUnsafeStructure(item, depth + 1)
      if (problem) return problem
    }
    return undefined
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) return key
    const problem = findUnsafeStructure((value as Record<string, unknown>)[key], depth + 1)
    if (problem) return problem
  }
  return undefined
}
