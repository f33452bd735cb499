import { SCHEMAS } from '@care/schemas'

type SchemaName = keyof typeof SCHEMAS
const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: object) => ({ content: { 'application/json': { schema } } })
const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [String(s), { description: 'Error', ...json(ref('ErrorResponse')) }]),
  )

/** touch and end: `session_id` from the x-session-id header, the body, or both (equal); see docs/api.md. */
const SESSION_ID_HEADER = {
  name: 'x-session-id',
  in: 'header',
  required: false,
  schema: { $ref: '#/components/schemas/Ulid' },
  description:
    'The session, instead of (or equal to) the body session_id. Two different values: 400 session_id_conflict.',
}

/** The input schema with session_id optional in the body (the header may carry it instead). */
function bodyWithOptionalSessionId(input: SchemaName): object {
  const schema = JSON.parse(JSON.stringify(SCHEMAS[input])) as { required?: string[] }
  return { ...schema, required: (schema.required ?? []).filter((key) => key !== 'session_id') }
}

function action(
  summary: string,
  input: SchemaName,
  output: SchemaName,
  okStatus: string,
  extra: number[],
  guarded = false,
) {
  return {
    post: {
      summary,
      security: [{ callerToken: [] }],
      ...(guarded ? { parameters: [SESSION_ID_HEADER] } : {}),
      requestBody: {
        required: true,
        ...json(guarded ? bodyWithOptionalSessionId(input) : ref(input)),
      },
      responses: {
        [okStatus]: { description: 'Recorded', ...json(ref(output)) },
        ...(okStatus === '201'
          ? { '200': { description: 'Retry: the original output', ...json(ref(output)) } }
          : {}),
        ...errors(400, 401, 403, 413, 415, 422, 503, ...extra),
      },
    },
  }
}

/**
 * The OpenAPI 3.1 description of the service, generated from the same TypeBox schemas that
 * validate requests, so the document cannot drift from the code.
 *
 * @example
 * app.get('/openapi.json', (c) => c.json(buildOpenApiDocument('0.1.0')))
 */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const sessionIdParam = {
    name: 'session_id',
    in: 'path',
    required: true,
    schema: { $ref: '#/components/schemas/Ulid' },
  }
  const read = (summary: string, responseSchema: object) => ({
    get: {
      summary,
      security: [{ auditorToken: [] }],
      parameters: [sessionIdParam],
      responses: {
        '200': { description: 'OK', ...json(responseSchema) },
        ...errors(400, 401, 403, 404, 503),
      },
    },
  })
  return {
    openapi: '3.1.0',
    info: {
      title: 'CARE session manager',
      version,
      description:
        'Creates session_ids and records session lifecycle events. There is no "current session" lookup: callers hold the session_id and pass it on.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths: {
      '/sessions.start': action(
        'Start a session',
        'SessionManagerStartInput',
        'SessionManagerStartOutput',
        '201',
        [],
      ),
      '/sessions.end': action(
        'End a session',
        'SessionManagerEndInput',
        'SessionManagerEndOutput',
        '200',
        [404, 409],
        true,
      ),
      '/sessions.touch': action(
        'Record activity (heartbeat)',
        'SessionManagerTouchInput',
        'SessionManagerTouchOutput',
        '200',
        [404, 409],
        true,
      ),
      '/sessions/{session_id}': read('Status, start and end of one session', { type: 'object' }),
      '/sessions/{session_id}/timeline': read('The events of one session in order (paged by cursor)', {
        type: 'object',
        properties: {
          session_id: { type: 'string' },
          events: { type: 'array', items: ref('SessionLifecycleEvent') },
          next_cursor: { type: ['string', 'null'] },
        },
      }),
      '/export': {
        get: {
          summary:
            'Stream lifecycle events as JSONL, grouped by session in start order; the last line is {"manifest": ...} (or an error body if the export broke off)',
          security: [{ auditorToken: [] }],
          parameters: [
            {
              name: 'from',
              in: 'query',
              schema: { type: 'string', description: 'ISO date or date-time (inclusive)' },
            },
            {
              name: 'to',
              in: 'query',
              schema: { type: 'string', description: 'ISO date or date-time (exclusive)' },
            },
            { name: 'user_id', in: 'query', schema: { type: 'string' } },
            { name: 'session_id', in: 'query', schema: { $ref: '#/components/schemas/Ulid' } },
            {
              name: 'reason',
              in: 'query',
              schema: { type: 'string', enum: ['explicit', 'idle_timeout', 'max_duration'] },
            },
          ],
          responses: {
            '200': {
              description: 'JSONL stream',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...errors(400, 401, 403, 503),
          },
        },
      },
      '/healthz': { get: { summary: 'The process is alive', responses: { '200': { description: 'OK' } } } },
      '/readyz': {
        get: {
          summary: 'Ready after recovery, while storage is healthy',
          responses: { '200': { description: 'Ready' }, ...errors(503) },
        },
      },
    },
    components: {
      schemas: {
        ...JSON.parse(JSON.stringify(SCHEMAS)),
        Ulid: JSON.parse(JSON.stringify(SCHEMAS.BaseSchema.properties.record_id)),
      },
      securitySchemes: {
        callerToken: { type: 'http', scheme: 'bearer', description: 'A token from CARE_CALLER_TOKENS' },
        auditorToken: { type: 'http', scheme: 'bearer', description: 'A token from CARE_AUDITOR_TOKENS' },
      },
    },
  }
}
