import { ErrorResponse } from '@care/schemas'
import { AnnotateStepInput, AnnotateStepOutput, WorkerEvent, WorkerInferInput } from './worker-records.js'

const plain = (schema: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(schema))
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: object) => ({ content: { 'application/json': { schema } } })
const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [String(s), { description: 'Error', ...json(ref('ErrorResponse')) }]),
  )

const SESSION_ID_HEADER = {
  name: 'x-session-id',
  in: 'header',
  required: false,
  description:
    'The session (a ULID from the session-manager). Required here or as session_id in the body; two different values are 400 session_id_conflict.',
  schema: { type: 'string', pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' },
}

/**
 * The sample worker's OpenAPI 3.1 document (served at `GET /openapi.json`), generated from the
 * TypeBox schemas that validate its requests, so it cannot drift from the code.
 *
 * @example
 * app.get('/openapi.json', (_req, res) => res.json(buildWorkerOpenApiDocument('0.1.0')))
 */
export function buildWorkerOpenApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'CARE sample worker',
      version,
      description:
        'A guarded worker: every request carries a session_id minted by the session-manager; the worker records session-tagged events and passes the session_id on to its downstream step.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths: {
      '/infer': {
        post: {
          summary:
            'Records infer.received, calls the downstream step with the same session_id, records and answers infer.output',
          parameters: [SESSION_ID_HEADER],
          requestBody: { required: true, ...json(ref('WorkerInferInput')) },
          responses: {
            '200': { description: 'The recorded infer.output event', ...json(ref('WorkerEvent')) },
            ...errors(400, 404, 409, 413, 415, 503),
          },
        },
      },
      '/steps/annotate': {
        post: {
          summary: 'The downstream step: annotates the text, records annotate.done',
          parameters: [{ ...SESSION_ID_HEADER, required: true }],
          requestBody: { required: true, ...json(ref('AnnotateStepInput')) },
          responses: {
            '200': { description: 'Annotations', ...json(ref('AnnotateStepOutput')) },
            ...errors(400, 404, 409, 413, 415, 503),
          },
        },
      },
      '/healthz': {
        get: {
          summary: 'The process is alive; names its instance',
          responses: {
            '200': {
              description: 'OK',
              ...json({
                type: 'object',
                properties: { status: { const: 'ok' }, instance_id: { type: 'string' } },
              }),
            },
          },
        },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OK' } } } },
    },
    components: {
      schemas: {
        WorkerInferInput: plain(WorkerInferInput),
        WorkerEvent: plain(WorkerEvent),
        AnnotateStepInput: plain(AnnotateStepInput),
        AnnotateStepOutput: plain(AnnotateStepOutput),
        ErrorResponse: plain(ErrorResponse),
      },
    },
  }
}
