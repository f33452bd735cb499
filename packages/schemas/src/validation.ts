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

type JsonSchemaNode = {
  anyOf?: JsonSchemaNode[]
  properties?: Record<string, JsonSchemaNode>
  const?: unknown
  if?: JsonSchemaNode
  then?: JsonSchemaNode
  required?: string[]
}

/**
 * Compiles `schema` into a {@link RecordValidator} whose errors are JSON-Pointer located,
 * de-duplicated and phrased for people. Compilation happens once, on first use, so importing
 * this package costs nothing for the validators a program never calls.
 *
 * @example
 * const validateThing = compileValidator(Thing)
 * if (validateThing.check(body)) use(body)
 */
export function compileValidator<S extends TSchema>(schema: S): RecordValidator<Static<S>> {
  type Compiled = {
    validator: { Check(value: unknown): boolean; Errors(value: unknown): unknown }
    union: ReturnType<typeof describeUnion>
  }
  let compiled: Compiled | undefined
  const compile = (): Compiled => {
    compiled ??= { validator: Compile(schema), union: describeUnion(schema as JsonSchemaNode) }
    return compiled
  }
  return {
    check: (value: unknown): value is Static<S> => compile().validator.Check(value),
    validate(value: unknown): ValidationResult<Static<S>> {
      const { validator, union } = compile()
      if (validator.Check(value)) return { ok: true, value: value as Static<S> }
      const fields = union
        ? union(value)
        : describeErrors(schema as JsonSchemaNode, validator.Errors(value) as unknown as RawError[])
      return {
        ok: false,
        fields: fields.length > 0 ? fields : [{ path: '', message: 'does not match the schema' }],
      }
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

/** RFC 6901: `~` and `/` inside a property name must be escaped in a JSON Pointer. */
function pointerToken(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1')
}

function schemaAt(root: JsonSchemaNode, schemaPath: string): JsonSchemaNode | undefined {
  let node: unknown = root
  for (const raw of schemaPath.replace(/^#\/?/, '').split('/')) {
    if (raw === '') continue
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[token]
  }
  return typeof node === 'object' && node !== null ? (node as JsonSchemaNode) : undefined
}

/**
 * A top-level union of objects told apart by a `const` property (e.g. `event`): TypeBox reports
 * every branch's failures, and stops after a few errors, so report the matching branch only.
 */
function describeUnion(schema: JsonSchemaNode): ((value: unknown) => FieldError[]) | undefined {
  const branches = schema.anyOf
  if (!branches || branches.length < 2) return undefined
  const discriminator = Object.keys(branches[0]?.properties ?? {}).find((name) => {
    const values = branches.map((branch) => branch.properties?.[name]?.const)
    return values.every((v) => typeof v === 'string') && new Set(values).size === branches.length
  })
  if (!discriminator) return undefined
  const validators = branches.map((branch) => compileValidator(branch as TSchema))
  const allowed = branches.map((branch) => branch.properties?.[discriminator]?.const as string)
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return [{ path: '', message: 'must be object' }]
    const tag = (value as Record<string, unknown>)[discriminator]
    const index = allowed.indexOf(tag as string)
    const result = index >= 0 ? validators[index]?.validate(value) : undefined
    if (result && !result.ok) return result.fields
    return [
      {
        path: `/${pointerToken(discriminator)}`,
        message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`,
      },
    ]
  }
}

function describeErrors(schema: JsonSchemaNode, errors: RawError[]): FieldError[] {
  const out = new Map<string, FieldError>()
  const add = (path: string, message: string) => {
    const key = `${path}\u0000${message}`
    if (!out.has(key)) out.set(key, { path, message })
  }
  // A length error next to a pattern error on the same value says less than the pattern message.
  const patternPaths = new Set(errors.filter((e) => e.keyword === 'pattern').map((e) => e.instancePath))
  for (const error of errors) {
    const { keyword, instancePath: path, params } = error
    if ((keyword === 'minLength' || keyword === 'maxLength') && patternPaths.has(path)) continue
    // Branch failures inside an anyOf are summarised by the anyOf error itself.
    if (error.schemaPath.includes('/anyOf/') || keyword === 'boolean') continue
    switch (keyword) {
      case 'required':
        for (const name of (params.requiredProperties as string[]) ?? [])
          add(`${path}/${pointerToken(name)}`, 'is required')
        break
      case 'additionalProperties':
        for (const name of (params.additionalProperties as string[]) ?? [])
          add(`${path}/${pointerToken(name)}`, 'is not allowed')
        break
      case 'if': {
        // e.g. HUMAN_NEEDS_PERFORMER: name the field `then` requires and the condition that applied.
        const node = schemaAt(schema, error.schemaPath)
        const condition = Object.entries(node?.if?.properties ?? {})
          .filter(([, sub]) => sub.const !== undefined)
          .map(([name, sub]) => `${name} is ${JSON.stringify(sub.const)}`)
          .join(' and ')
        const required = node?.then?.required ?? []
        for (const name of required)
          add(`${path}/${pointerToken(name)}`, condition ? `is required when ${condition}` : 'is required')
        if (required.length === 0) add(path, error.message)
        break
      }
      case 'anyOf': {
        const branches = errors.filter(
          (e) => e.instancePath === path && e.schemaPath.startsWith(`${error.schemaPath}/anyOf/`),
        )
        const allowed = branches
          .filter((e) => e.keyword === 'const')
          .map((e) => JSON.stringify(e.params.allowedValue))
        const reasons = [...new Set(branches.map((e) => e.message))]
        add(
          path,
          allowed.length > 0
            ? `must be one of ${allowed.join(', ')}`
            : reasons.length > 0
              ? reasons.join(' or ')
              : 'has the wrong type or form',
        )
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
