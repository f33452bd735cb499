/**
 * Canonical CARE contracts. Downstream code imports only from here: the package `exports` map
 * blocks deep imports into internal files.
 */
export { BaseFields, BaseSchema, HUMAN_NEEDS_PERFORMER } from './base-schema.js'
export { SCHEMAS } from './catalog.js'
export {
  ERROR_CODES,
  type ErrorCode,
  ErrorResponse,
  errorResponse,
  FieldError,
} from './error-response.js'
export { FORBIDDEN_KEYS, type JsonBodyResult, MAX_JSON_DEPTH, parseJsonBody } from './json-body.js'
export { jsonSchemaDocument } from './json-schema-document.js'
export { allowedMethods } from './openapi-methods.js'
export {
  Identifier,
  Metadata,
  Origin,
  SCHEMA_VERSION,
  SourceName,
  TIMESTAMP_PATTERN,
  Timestamp,
  ULID_PATTERN,
  Ulid,
} from './primitives.js'
export {
  SessionEndReason,
  SessionManagerEndInput,
  SessionManagerEndOutput,
} from './session-manager/end.js'
export { SessionLifecycleEvent } from './session-manager/lifecycle-event.js'
export { SessionManagerStartInput, SessionManagerStartOutput } from './session-manager/start.js'
export { SessionSummary, SessionTimelinePage } from './session-manager/summary.js'
export { SessionManagerTouchInput, SessionManagerTouchOutput } from './session-manager/touch.js'
export { SessionTaggedRecord } from './session-tagged-record.js'
export { compileValidator, type RecordValidator, type ValidationResult } from './validation.js'
export {
  validateSessionLifecycleEvent,
  validateSessionManagerEndInput,
  validateSessionManagerEndOutput,
  validateSessionManagerStartInput,
  validateSessionManagerStartOutput,
  validateSessionManagerTouchInput,
  validateSessionManagerTouchOutput,
  validateSessionTaggedRecord,
} from './validators.js'
