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
      message: malformedJsonMessage(text, (err as Error).message),
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

/** Longest excerpt of the body a malformed_json message quotes. */
const EXCERPT_CHARS = 24

/**
 * The message of a body JSON.parse refused. V8's own message quotes the raw body (binary bytes
 * of a compressed body, a whole payload): only the position is kept, with a short excerpt from
 * there in which anything but printable ASCII is escaped as `\uXXXX`.
 */
function malformedJsonMessage(text: string, parserMessage: string): string {
  if (text.trim() === '') return 'The request body is not valid JSON: it is empty.'
  if (/end of JSON input/.test(parserMessage))
    return 'The request body is not valid JSON: it ends before the value is complete.'
  const at = /at position (\d+)/.exec(parserMessage)
  const position = at ? Math.min(Number(at[1]), text.length) : 0
  const excerpt = [...text.slice(position, position + EXCERPT_CHARS)]
    .map((ch) => (/^[\x20-\x7e]$/.test(ch) && ch !== '"' && ch !== '\\' ? ch : escapeChar(ch)))
    .join('')
  const where = at ? `at position ${position}` : 'near the start'
  const more = text.length > position + EXCERPT_CHARS ? '…' : ''
  return `The request body is not valid JSON (${where}: "${excerpt}${more}").`
}

function escapeChar(ch: string): string {
  return ch
    .split('')
    .map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .join('')
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
