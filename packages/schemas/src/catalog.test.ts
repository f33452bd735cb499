import { existsSync, readFileSync } from 'node:fs'
import type { ValidateFunction } from 'ajv/dist/2020.js'
// Named import: the default import of this CommonJS module has no construct signature under NodeNext.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { SCHEMAS } from './catalog.js'
import { jsonSchemaDocument } from './json-schema-document.js'
import { SCHEMA_VERSION } from './primitives.js'
import { END_OUTPUT, FIXTURES, REQUIRED_FIELDS, type SchemaName } from './test-support/fixtures.js'
import { compileValidator, type RecordValidator } from './validation.js'
import {
  validateSessionLifecycleEvent,
  validateSessionManagerEndInput,
  validateSessionManagerEndOutput,
  validateSessionManagerStartInput,
  validateSessionManagerStartOutput,
  validateSessionManagerTouchInput,
  validateSessionManagerTouchOutput,
} from './validators.js'

const JSON_SCHEMA_DIR = new URL('../dist/json-schema/', import.meta.url)
const NAMES = Object.keys(SCHEMAS) as SchemaName[]

// The exported, precompiled validators where there is one; the rest are compiled here exactly as
// a consumer would with compileValidator.
const EXPORTED: Partial<Record<SchemaName, RecordValidator<unknown>>> = {
  SessionManagerStartInput: validateSessionManagerStartInput,
  SessionManagerStartOutput: validateSessionManagerStartOutput,
  SessionManagerEndInput: validateSessionManagerEndInput,
  SessionManagerEndOutput: validateSessionManagerEndOutput,
  SessionManagerTouchInput: validateSessionManagerTouchInput,
  SessionManagerTouchOutput: validateSessionManagerTouchOutput,
  SessionLifecycleEvent: validateSessionLifecycleEvent,
}
const typebox = (name: SchemaName): RecordValidator<unknown> =>
  EXPORTED[name] ?? compileValidator(SCHEMAS[name])

function readEmitted(name: SchemaName): Record<string, unknown> {
  const file = new URL(`${name}.json`, JSON_SCHEMA_DIR)
  if (!existsSync(file))
    throw new Error(`${file.pathname} is missing: run \`pnpm --filter @care/schemas build\``)
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
}

// Strict mode (`ajv --strict=true`: strictRequired, strictTypes, strictTuples, unknown keywords,
// bad patterns) on every file we publish, as a consumer with a strict validator runs it.
const ajv = new Ajv2020({ strict: true, allErrors: true })
const ajvValidators = new Map<SchemaName, ValidateFunction>()
function ajvFor(name: SchemaName): ValidateFunction {
  let validate = ajvValidators.get(name)
  if (!validate) {
    validate = ajv.compile(readEmitted(name))
    ajvValidators.set(name, validate)
  }
  return validate
}

describe('the schema catalog', () => {
  it('has fixtures, valid and invalid, for every schema in SCHEMAS', () => {
    expect(Object.keys(FIXTURES).sort()).toEqual([...NAMES].sort())
    for (const name of NAMES) {
      expect(FIXTURES[name].valid.length, name).toBeGreaterThan(0)
      expect(FIXTURES[name].invalid.length, name).toBeGreaterThan(0)
    }
  })

  it.each(NAMES)('emits %s.json as draft 2020-12 with a versioned urn $id', (name) => {
    const document = readEmitted(name)
    expect(document.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(document.$id).toBe(`urn:care:schema:${SCHEMA_VERSION}:${name}`)
    expect(document.title).toBe(name)
  })

  it.each(NAMES)('emits %s.json identical to the TypeBox schema (dist is not stale)', (name) => {
    expect(readEmitted(name)).toEqual(jsonSchemaDocument(name, SCHEMAS[name]))
  })

  it.each(NAMES)('requires exactly the documented fields of %s', (name) => {
    const required = (readEmitted(name).required as string[] | undefined) ?? []
    expect([...required].sort()).toEqual([...REQUIRED_FIELDS[name]].sort())
  })

  it('makes session_id required on the end input and every output', () => {
    for (const name of [
      'SessionManagerEndInput',
      'SessionManagerTouchInput',
      'SessionManagerStartOutput',
      'SessionManagerTouchOutput',
      'SessionManagerEndOutput',
    ] as const)
      expect(REQUIRED_FIELDS[name], name).toContain('session_id')
  })

  it('compiles every emitted file with Ajv in strict mode', () => {
    for (const name of NAMES) expect(() => ajvFor(name), name).not.toThrow()
  })

  it('discriminates SessionLifecycleEvent.json on event, so a validator names the missing field', () => {
    const validate = ajvFor('SessionLifecycleEvent')
    const { reason: _reason, ...endWithoutReason } = END_OUTPUT
    expect(validate(endWithoutReason)).toBe(false)
    const messages = validate.errors?.map((e) => `${e.instancePath} ${e.message}`) ?? []
    expect(messages).toContain(" must have required property 'reason'")
    expect(messages.join('\n')).not.toMatch(/anyOf|oneOf/)
    expect(validate({ ...END_OUTPUT, event: 'session.pause' })).toBe(false)
    expect(validate.errors?.map((e) => `${e.instancePath} ${e.message}`)).toEqual([
      '/event must be equal to one of the allowed values',
    ])
  })
})

describe.each(NAMES)('%s fixtures', (name) => {
  const { valid, invalid } = FIXTURES[name]

  it.each(valid.map((f) => [f.name, f.value] as const))('accepts %s (TypeBox and Ajv)', (_label, value) => {
    const verdict = typebox(name).validate(value)
    expect(verdict.ok ? [] : verdict.fields).toEqual([])
    expect(typebox(name).check(value)).toBe(true)
    const ajvValidate = ajvFor(name)
    expect(ajvValidate(value) ? [] : ajvValidate.errors).toEqual([])
  })

  it.each(invalid.map((f) => [f.name, f.value] as const))('rejects %s (TypeBox and Ajv)', (_label, value) => {
    const verdict = typebox(name).validate(value)
    expect(verdict.ok).toBe(false)
    if (!verdict.ok) expect(verdict.fields.length).toBeGreaterThan(0)
    expect(typebox(name).check(value)).toBe(false)
    expect(ajvFor(name)(value)).toBe(false)
  })
})
