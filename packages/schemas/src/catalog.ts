import type { TSchema } from 'typebox'
import { BaseSchema } from './base-schema.js'
import { ErrorResponse } from './error-response.js'
import { SessionManagerEndInput, SessionManagerEndOutput } from './session-manager/end.js'
import { SessionLifecycleEvent } from './session-manager/lifecycle-event.js'
import { SessionManagerStartInput, SessionManagerStartOutput } from './session-manager/start.js'
import { SessionManagerTouchInput, SessionManagerTouchOutput } from './session-manager/touch.js'
import { SessionTaggedRecord } from './session-tagged-record.js'

/**
 * Every published schema by canonical name. The build writes each one to
 * `@care/schemas/json-schema/<Name>.json` (JSON Schema draft 2020-12) for non-TypeScript teams.
 *
 * @example
 * for (const [name, schema] of Object.entries(SCHEMAS)) console.log(name, schema.required)
 */
export const SCHEMAS = {
  BaseSchema,
  SessionManagerStartInput,
  SessionManagerStartOutput,
  SessionManagerEndInput,
  SessionManagerEndOutput,
  SessionManagerTouchInput,
  SessionManagerTouchOutput,
  SessionLifecycleEvent,
  SessionTaggedRecord,
  ErrorResponse,
} as const satisfies Record<string, TSchema>
