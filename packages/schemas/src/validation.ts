import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { FieldError } from './error-response.js'
import { IDENTIFIER_PATTERN, SOURCE_PATTERN, TIMESTAMP_PATTERN, ULID_PATTERN } from './primitives.js'

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; fields: FieldError[] }

/**
 * A validator compiled once for one schema: `check` is a type guard, `validate` also explains.
 *
 * @example
 * const result = validateSessionManagerStartInput.validate(body)
 * if (!result.ok) return c.json(errorResponse('validation_failed', { fields: result.fields }).body, 400)
 */
export interface RecordValidator<T> {
  check(value: unknown): value is T
  validate(value: unknown): ValidationResult<T>
}

const PATTERN_MESSAGES: Record<string, string> = {
  [ULID_PATTERN]: 'must be a ULID (26 upper-case Crockford base32 characters)',
  [TIMESTAMP_PATTERN]: 'must be a real UTC date-time with milliseconds and Z, e.g. 2026-03-01T12:00:00.000Z',
  [IDENTIFIER_PATTERN]: 'must be printable ASCII without spaces or control characters',
  [SOURCE_PATTERN]: 'must start with a lower-case letter and use only a-z, 0-9, _ . : -',
}

/**
 * Compiles `schema` into a {@link RecordValidator} whose errors are JSON-Pointer located,
 * de-duplicated and phrased for people.
 *
 * @example
 * const validateThing = compileValidator(Thing)
 * if (validateThing.check(body)) use(body)
 */
export function compileValidator<S extends TSchema>(schema: S): RecordValidator<Static<S>> {
  const compiled = Compile(schema)
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    validate(value: unknown): ValidationResult<Static<S>> {
      if (compiled.Check(value)) return { ok: true, value: value as Static<S> }
      return { ok: false, fields: describeErrors(compiled.Errors(value)) }
    },
  }
}

interface RawError {
  keyword: string
  schemaPath: string
  instancePath: string
  params: Record<string, unknown>
  message: string
}

function describeErrors(raw: Iterable<unknown>): FieldError[] {
  const errors = [...raw] as RawError[]
  const out = new Map<string, FieldError>()
  const add = (path: string, message: string) => {
    const key = `${path}\u0000${message}`
    if (!out.has(key)) out.set(key, { path, message })
  }
  for (const error of errors) {
    const { keyword, instancePath: path, params } = error
    // Branch failures inside an anyOf are summarised by the anyOf error itself.
    if (error.schemaPath.includes('/anyOf/') || keyword === 'boolean') continue
    switch (keyword) {
      case 'required':
        for (const name of (params.requiredProperties as string[]) ?? [])
          add(`${path}/${name}`, 'is required')
        break
      case 'additionalProperties':
        for (const name of (params.additionalProperties as string[]) ?? [])
          add(`${path}/${name}`, 'is not allowed')
        break
      case 'if':
        add(`${path}/performer_id`, 'is required when origin is "human"')
        break
      case 'anyOf': {
        const allowed = errors
          .filter((e) => e.instancePath === path && e.keyword === 'const')
          .map((e) => JSON.stringify(e.params.allowedValue))
        add(path, allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : 'has the wrong type or form')
        break
      }
      case 'const':
        add(path, `must be ${JSON.stringify(params.allowedValue)}`)
        break
      case 'pattern':
        add(path, PATTERN_MESSAGES[params.pattern as string] ?? error.message)
        break
      default:
        add(path, error.message)
    }
  }
  return [...out.values()]
}
