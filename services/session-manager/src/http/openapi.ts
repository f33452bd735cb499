import { SCHEMAS, SessionSummary, SessionTimelinePage } from '@care/schemas'

type ComponentName =
  | Exclude<keyof typeof SCHEMAS, 'BaseSchema' | 'SessionTaggedRecord'>
  | 'SessionSummary'
  | 'SessionTimelinePage'
const ref = (name: ComponentName | 'Ulid' | 'Status') => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: object) => ({ content: { 'application/json': { schema } } })
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad request: malformed JSON, a reserved key, a schema violation (`fields`) or a bad session_id.',
  401: 'A valid bearer token is required.',
  403: 'This token may not perform this action.',
  404: 'No such session for this user.',
  409: 'The session has already ended (`details` says how and when).',
  410: 'The session’s events were archived by retention (`session_archived`); read them from the archive.',
  413: 'The request body is too large.',
  415: 'The request body must be uncompressed UTF-8 application/json.',
  422: 'The record_id was used with a different request, is too old or is in the future.',
  503: 'Not ready, or the event could not be stored durably: retry the same request (same record_id) after Retry-After.',
}
const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      String(s),
      {
        description: ERROR_DESCRIPTIONS[s] ?? 'Error',
        ...(s === 503 ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } } : {}),
        ...json(ref('ErrorResponse')),
      },
    ]),
  )

interface Action {
  operationId: string
  summary: string
  description: string
  input: ComponentName
  output: ComponentName
  okStatus: '200' | '201'
  extra: number[]
  /** touch and end: `session_id` may come from the x-session-id header instead of the body. */
  guarded?: boolean
}

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
function bodyWithOptionalSessionId(input: ComponentName): object {
  const schema = JSON.parse(JSON.stringify(SCHEMAS[input as keyof typeof SCHEMAS])) as { required?: string[] }
  return { ...schema, required: (schema.required ?? []).filter((key) => key !== 'session_id') }
}

function action({ operationId, summary, description, input, output, okStatus, extra, guarded }: Action) {
  return {
    post: {
      operationId,
      tags: ['sessions'],
      summary,
      description,
      security: [{ callerToken: [] }],
      ...(guarded ? { parameters: [SESSION_ID_HEADER] } : {}),
      requestBody: { required: true, ...json(guarded ? bodyWithOptionalSessionId(input) : ref(input)) },
      responses: {
        [okStatus]: { description: 'Recorded (fdatasync-ed before this answer).', ...json(ref(output)) },
        ...(okStatus === '201'
          ? {
              '200': {
                description: 'A retry with the same record_id: the original output.',
                ...json(ref(output)),
              },
            }
          : {}),
        ...errors(400, 401, 403, 413, 415, 422, 503, ...extra),
      },
    },
  }
}

/**
 * The OpenAPI 3.1 description of the service, generated from the same TypeBox schemas that
 * validate requests, so the document cannot drift from the code. Served at `GET /openapi.json` and
 * written to `dist/openapi.json` at build (`scripts/emit-openapi.mjs`).
 *
 * @example
 * app.get('/openapi.json', (c) => c.json(buildOpenApiDocument('0.1.0')))
 */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const sessionIdParam = {
    name: 'session_id',
    in: 'path',
    required: true,
    description: 'The session, as returned by `POST /sessions.start`.',
    schema: ref('Ulid'),
  }
  const unauthenticated = (operationId: string, summary: string, description: string, responses: object) => ({
    get: { operationId, tags: ['operations'], summary, description, security: [], responses },
  })
  const schemas = JSON.parse(JSON.stringify(SCHEMAS)) as Record<string, Record<string, unknown>>
  const { BaseSchema: _base, SessionTaggedRecord: _tagged, SessionLifecycleEvent: _union, ...used } = schemas
  const events = {
    'session.start': 'SessionManagerStartOutput',
    'session.touch': 'SessionManagerTouchOutput',
    'session.end': 'SessionManagerEndOutput',
  } as const
  return {
    openapi: '3.1.0',
    info: {
      title: 'CARE session manager',
      version,
      description:
        'Creates session_ids and records session lifecycle events. There is no "current session" lookup: callers hold the session_id and pass it on. Every error has the shared JSON shape `{ error, message, fields?, details? }`; a route answers a method it does not accept with 405 and an `Allow` header.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: 'http://127.0.0.1:7400', description: 'The default bind (HOST and PORT change it).' }],
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [
      { name: 'sessions', description: 'Start, touch and end sessions (caller role).' },
      { name: 'audit', description: 'Read sessions, timelines and exports (auditor role).' },
      { name: 'operations', description: 'Liveness, readiness and this description (no authentication).' },
    ],
    paths: {
      '/sessions.start': action({
        operationId: 'startSession',
        summary: 'Start a session',
        description:
          'Opens a new session for `user_id` and returns its `session_id`. `record_id` is the idempotency key: retrying the same body answers 200 with the original output.',
        input: 'SessionManagerStartInput',
        output: 'SessionManagerStartOutput',
        okStatus: '201',
        extra: [],
      }),
      '/sessions.end': action({
        operationId: 'endSession',
        summary: 'End a session',
        description: 'Ends the named session explicitly (reason `explicit`).',
        input: 'SessionManagerEndInput',
        output: 'SessionManagerEndOutput',
        okStatus: '200',
        extra: [404, 409, 410],
        guarded: true,
      }),
      '/sessions.touch': action({
        operationId: 'touchSession',
        summary: 'Record activity (heartbeat)',
        description: 'Records activity in an open session, pushing back its idle timeout.',
        input: 'SessionManagerTouchInput',
        output: 'SessionManagerTouchOutput',
        okStatus: '200',
        extra: [404, 409, 410],
        guarded: true,
      }),
      '/sessions/{session_id}': {
        get: {
          operationId: 'getSession',
          tags: ['audit'],
          summary: 'Status, start and end of one session',
          description: 'The state of one session, folded from its events.',
          security: [{ auditorToken: [] }],
          parameters: [sessionIdParam],
          responses: {
            '200': { description: 'The session.', ...json(ref('SessionSummary')) },
            ...errors(400, 401, 403, 404, 410, 503),
          },
        },
      },
      '/sessions/{session_id}/timeline': {
        get: {
          operationId: 'getSessionTimeline',
          tags: ['audit'],
          summary: 'The events of one session in order (paged by cursor)',
          description:
            'One page of the session’s lifecycle events in log order. Pass `next_cursor` back as `cursor` until it is null.',
          security: [{ auditorToken: [] }],
          parameters: [
            sessionIdParam,
            {
              name: 'cursor',
              in: 'query',
              required: false,
              description:
                'Where the page starts: `next_cursor` of the previous page (default: the first event).',
              schema: { type: 'string', pattern: '^[0-9]+$', default: '0' },
            },
            {
              name: 'limit',
              in: 'query',
              required: false,
              description: 'Most events on this page.',
              schema: { type: 'integer', minimum: 1, maximum: 1000, default: 1000 },
            },
          ],
          responses: {
            '200': { description: 'One page of events.', ...json(ref('SessionTimelinePage')) },
            ...errors(400, 401, 403, 404, 410, 503),
          },
        },
      },
      '/export': {
        get: {
          operationId: 'exportEvents',
          tags: ['audit'],
          summary: 'Stream lifecycle events as JSONL',
          description:
            'Lifecycle events as JSONL, grouped by session in start order; the last line is `{"manifest": ...}` (or an error body if the export broke off). When the store keeps a signed Merkle tree, the record lines are followed by one `{"inclusion_proof": ...}` line per record, against the signed checkpoint named in `manifest.transparency` (docs/audit.md).',
          security: [{ auditorToken: [] }],
          parameters: [
            {
              name: 'from',
              in: 'query',
              description: 'ISO date or date-time (inclusive).',
              schema: { type: 'string' },
            },
            {
              name: 'to',
              in: 'query',
              description: 'ISO date or date-time (exclusive).',
              schema: { type: 'string' },
            },
            {
              name: 'user_id',
              in: 'query',
              description: 'Only this user’s sessions.',
              schema: { type: 'string' },
            },
            { name: 'session_id', in: 'query', description: 'Only this session.', schema: ref('Ulid') },
            {
              name: 'reason',
              in: 'query',
              description: 'Only sessions that ended this way.',
              schema: { type: 'string', enum: ['explicit', 'idle_timeout', 'max_duration'] },
            },
            {
              name: 'proofs',
              in: 'query',
              description:
                'Include the inclusion-proof lines (default true when the store signs checkpoints; false leaves them out).',
              schema: { type: 'string', enum: ['true', 'false'] },
            },
          ],
          responses: {
            '200': {
              description: 'JSONL stream.',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...errors(400, 401, 403, 503),
          },
        },
      },
      '/healthz': unauthenticated(
        'getHealth',
        'The process is alive',
        'Answers 200 while the process runs.',
        {
          '200': { description: 'Alive.', ...json(ref('Status')) },
        },
      ),
      '/readyz': unauthenticated(
        'getReadiness',
        'Ready after recovery, while storage is healthy',
        'Answers 200 once the event log is recovered, 503 while recovering or after a storage failure.',
        {
          '200': { description: 'Ready.', ...json(ref('Status')) },
          ...errors(503),
        },
      ),
      '/openapi.json': unauthenticated(
        'getOpenApiDocument',
        'This OpenAPI document',
        'The OpenAPI 3.1 description of this service (also shipped as `dist/openapi.json`).',
        {
          '200': {
            description: 'The document.',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
        },
      ),
    },
    components: {
      schemas: {
        ...used,
        SessionLifecycleEvent: {
          description: 'Any event session_manager records, told apart by `event`.',
          anyOf: Object.values(events).map((name) => ref(name)),
          discriminator: {
            propertyName: 'event',
            mapping: Object.fromEntries(
              Object.entries(events).map(([event, name]) => [event, ref(name).$ref]),
            ),
          },
        },
        SessionSummary: JSON.parse(JSON.stringify(SessionSummary)),
        SessionTimelinePage: {
          ...JSON.parse(JSON.stringify(SessionTimelinePage)),
          properties: {
            ...JSON.parse(JSON.stringify(SessionTimelinePage.properties)),
            events: { type: 'array', items: ref('SessionLifecycleEvent') },
          },
        },
        Status: {
          type: 'object',
          required: ['status'],
          properties: {
            status: { type: 'string', description: '`ok` (alive) or `ready`.' },
            open_sessions: {
              type: 'integer',
              minimum: 0,
              description: 'Sessions open now (readiness only).',
            },
          },
        },
        Ulid: JSON.parse(JSON.stringify(SCHEMAS.BaseSchema.properties.record_id)),
      },
      headers: {
        RetryAfter: {
          description: 'Seconds to wait before retrying the same request.',
          schema: { type: 'integer', minimum: 0 },
        },
      },
      securitySchemes: {
        callerToken: { type: 'http', scheme: 'bearer', description: 'A token from CARE_CALLER_TOKENS' },
        auditorToken: { type: 'http', scheme: 'bearer', description: 'A token from CARE_AUDITOR_TOKENS' },
      },
    },
  }
}
