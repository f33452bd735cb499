import {
  BaseSchema,
  compileValidator,
  HUMAN_NEEDS_PERFORMER,
  Identifier,
  Timestamp,
  Ulid,
} from '@care/schemas'
import Type, { type Static } from 'typebox'

/**
 * What `POST /infer` accepts: a BaseSchema v1.1 record with the text to work on. `session_id` may
 * also come in the body; the session guard has already checked it agrees with the header.
 *
 * @example
 * const input: WorkerInferInput = {
 *   schema_version: '1.1', record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0', user_id: 'user-42',
 *   timestamp: '2026-03-01T12:00:00.000Z', source: 'ui', origin: 'human', performer_id: 'caregiver-7',
 *   text: 'Is it time for my medication?',
 * }
 */
export const WorkerInferInput = Type.Object(
  {
    ...BaseSchema.properties,
    session_id: Type.Optional(Ulid),
    text: Type.String({ minLength: 1, maxLength: 4000, description: 'What the user said or typed.' }),
  },
  { additionalProperties: false, ...HUMAN_NEEDS_PERFORMER },
)
export type WorkerInferInput = Static<typeof WorkerInferInput>

/**
 * What the downstream step `POST /steps/annotate` accepts (its session id travels in `x-session-id`).
 *
 * @example
 * const step: AnnotateStepInput = { input_record_id: input.record_id, user_id: 'user-42', text: 'hello' }
 */
export const AnnotateStepInput = Type.Object(
  { input_record_id: Ulid, user_id: Identifier, text: Type.String({ minLength: 1, maxLength: 4000 }) },
  { additionalProperties: false },
)
export type AnnotateStepInput = Static<typeof AnnotateStepInput>

/**
 * Facts the annotate step derives from the text.
 *
 * @example
 * const a: Annotations = { characters: 5, words: 1, question: false }
 */
export const Annotations = Type.Object({
  characters: Type.Integer({ minimum: 0 }),
  words: Type.Integer({ minimum: 0 }),
  question: Type.Boolean(),
})
export type Annotations = Static<typeof Annotations>

/**
 * What the annotate step answers: the session id it was given, and the annotations.
 *
 * @example
 * const out: AnnotateStepOutput = { session_id: sessionId, annotations: { characters: 5, words: 1, question: false } }
 */
export const AnnotateStepOutput = Type.Object({ session_id: Ulid, annotations: Annotations })
export type AnnotateStepOutput = Static<typeof AnnotateStepOutput>

/** The events the worker records, in the order one request produces them. */
export const WorkerEventName = Type.Union([
  Type.Literal('infer.received'),
  Type.Literal('annotate.done'),
  Type.Literal('infer.output'),
  Type.Literal('infer.failed'),
])
export type WorkerEventName = Static<typeof WorkerEventName>

/**
 * One line of the worker's append-only JSONL log, and the body of a successful `/infer` answer
 * (`event: "infer.output"`). Every one carries the propagated `session_id`.
 *
 * @example
 * const line: WorkerEvent = {
 *   schema_version: '1.1', record_id: '01JNC3H0000000000000000000', session_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
 *   user_id: 'user-42', timestamp: '2026-03-01T12:00:00.123Z', source: 'sample_worker', origin: 'system',
 *   event: 'infer.received', input_record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1P0',
 * }
 */
export const WorkerEvent = Type.Object(
  {
    schema_version: Type.Literal('1.1'),
    record_id: Ulid,
    session_id: Ulid,
    user_id: Identifier,
    timestamp: Timestamp,
    source: Type.Literal('sample_worker'),
    origin: Type.Literal('system'),
    event: WorkerEventName,
    input_record_id: Ulid,
    output: Type.Optional(
      Type.Object({
        label: Type.Union([Type.Literal('question'), Type.Literal('statement')]),
        annotations: Annotations,
      }),
    ),
    annotations: Type.Optional(Annotations),
  },
  { additionalProperties: false },
)
export type WorkerEvent = Static<typeof WorkerEvent>

/** @example if (!validateWorkerInferInput.check(body)) reject() */
export const validateWorkerInferInput = compileValidator(WorkerInferInput)
/** @example validateAnnotateStepInput.validate(req.body) */
export const validateAnnotateStepInput = compileValidator(AnnotateStepInput)
/** @example validateAnnotateStepOutput.check(await res.json()) */
export const validateAnnotateStepOutput = compileValidator(AnnotateStepOutput)
/** @example validateWorkerEvent.check(JSON.parse(line)) */
export const validateWorkerEvent = compileValidator(WorkerEvent)
