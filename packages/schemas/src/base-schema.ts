import Type, { type Static } from 'typebox'
import { Identifier, Origin, SourceName, Timestamp, Ulid } from './primitives.js'

/**
 * The metadata fields every CARE record carries (BaseSchema v1.1), for building record schemas
 * that extend BaseSchema.
 *
 * @example
 * const MyInput = Type.Object({ ...BaseFields, text: Type.String() }, { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER })
 */
export const BaseFields = {
  schema_version: Type.Literal('1.1', { description: 'BaseSchema version. Always "1.1" for this contract.' }),
  record_id: Ulid,
  user_id: Identifier,
  timestamp: Timestamp,
  source: SourceName,
  origin: Origin,
  performer_id: Type.Optional(Identifier),
}

/**
 * JSON Schema `if`/`then` that makes `performer_id` required when `origin` is `human`.
 * Kept in the schema itself so validators in any language enforce it, not just ours. Spread it
 * into the options of every record schema that extends BaseSchema.
 *
 * @example
 * Type.Object({ ...BaseFields, text: Type.String() }, { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER })
 */
export const HUMAN_NEEDS_PERFORMER = {
  if: { properties: { origin: { const: 'human' } }, required: ['origin'] },
  // `properties` repeats the field's presence so strict validators (ajv strictRequired) accept it.
  then: { properties: { performer_id: { type: 'string' } }, required: ['performer_id'] },
} as const

/**
 * BaseSchema v1.1: the core metadata of every CARE record. Inputs extend it and reject
 * unknown properties; outputs extend it and may gain optional fields within v1.x.
 *
 * @example
 * const record: BaseSchema = {
 *   schema_version: '1.1',
 *   record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
 *   user_id: 'user-42',
 *   timestamp: '2026-03-01T12:00:00.000Z',
 *   source: 'ui',
 *   origin: 'human',
 *   performer_id: 'caregiver-7',
 * }
 */
export const BaseSchema = Type.Object(BaseFields, {
  additionalProperties: false,
  ...HUMAN_NEEDS_PERFORMER,
})
export type BaseSchema = Static<typeof BaseSchema>
