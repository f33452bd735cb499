import type { TSchema } from 'typebox'
import { SCHEMA_VERSION } from './primitives.js'

type JsonObject = Record<string, unknown>
type ObjectBranch = { properties?: Record<string, { const?: unknown }> }

/** The property whose string constant differs in every branch of a union, if there is one. */
function discriminatorOf(branches: ObjectBranch[]): string | undefined {
  const first = branches[0]?.properties ?? {}
  return Object.keys(first).find((name) => {
    const values = branches.map((branch) => branch.properties?.[name]?.const)
    return values.every((v) => typeof v === 'string') && new Set(values).size === branches.length
  })
}

/**
 * The standalone JSON Schema (draft 2020-12) document published for one schema as
 * `@care/schemas/json-schema/<name>.json`. It compiles under `ajv --strict=true`. A union of objects
 * told apart by one constant property (SessionLifecycleEvent: `event`) is written as one object
 * schema with an `if`/`then` per value instead of a bare `anyOf`, so every validator reports the
 * failures of the matching branch ("must have required property 'reason'") instead of "not valid
 * under any of the given schemas". It accepts exactly what the TypeBox schema accepts.
 *
 * @example
 * const document = jsonSchemaDocument('SessionLifecycleEvent', SCHEMAS.SessionLifecycleEvent)
 * new Ajv2020({ strict: true }).compile(document)
 */
export function jsonSchemaDocument(name: string, schema: TSchema): JsonObject {
  const plain = JSON.parse(JSON.stringify(schema)) as JsonObject
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:care:schema:${SCHEMA_VERSION}:${name}`,
    title: name,
    ...discriminated(plain),
  }
}

function discriminated(schema: JsonObject): JsonObject {
  const branches = schema.anyOf as ObjectBranch[] | undefined
  const name = Array.isArray(branches) ? discriminatorOf(branches) : undefined
  if (!branches || !name) return schema
  const { anyOf: _union, ...rest } = schema
  const values = branches.map((branch) => branch.properties?.[name]?.const as string)
  return {
    ...rest,
    type: 'object',
    required: [name],
    properties: {
      [name]: {
        type: 'string',
        enum: values,
        description: 'Which kind of record this is; picks the schema.',
      },
    },
    allOf: branches.map((branch, i) => ({
      if: { properties: { [name]: { const: values[i] } }, required: [name] },
      then: branch,
    })),
  }
}
