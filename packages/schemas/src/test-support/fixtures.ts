// Valid and invalid records for every schema in SCHEMAS. The same fixtures are checked with our
// TypeBox validators and with Ajv against the emitted JSON Schema files, so both must agree.
import type { SCHEMAS } from '../catalog.js'

export type SchemaName = keyof typeof SCHEMAS

export interface Fixture {
  name: string
  value: unknown
}

export interface FixtureSet {
  valid: Fixture[]
  invalid: Fixture[]
}

type Json = Record<string, unknown>

export const RECORD_ID = '01JNC3G8Z9X7W6V5T4S3R2Q1P0'
export const SESSION_ID = '01JNC3G9AAAABBBBCCCCDDDDEE'
export const INPUT_RECORD_ID = '01JNC3G7ZZZZYYYYXXXXWWWWVV'
export const INPUT_DIGEST = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'

/** A human-originated BaseSchema v1.1 record: the starting point of every input fixture. */
export const BASE: Json = {
  schema_version: '1.1',
  record_id: RECORD_ID,
  user_id: 'user-42',
  timestamp: '2026-03-01T12:00:00.000Z',
  source: 'ui',
  origin: 'human',
  performer_id: 'caregiver-7',
}

const START_INPUT: Json = { ...BASE, metadata: { device: 'tablet', locale: 'en-GB' } }
const SESSION_INPUT: Json = { ...BASE, session_id: SESSION_ID }

const OUTPUT_BASE: Json = {
  ...BASE,
  session_id: SESSION_ID,
  source: 'session_manager',
  input_record_id: INPUT_RECORD_ID,
  input_source: 'ui',
  input_digest: INPUT_DIGEST,
}

export const START_OUTPUT: Json = {
  ...OUTPUT_BASE,
  event: 'session.start',
  metadata: { device: 'tablet' },
  idle_timeout_ms: 900_000,
  max_duration_ms: 14_400_000,
}
export const TOUCH_OUTPUT: Json = { ...OUTPUT_BASE, event: 'session.touch' }
export const END_OUTPUT: Json = {
  ...OUTPUT_BASE,
  event: 'session.end',
  reason: 'explicit',
  started_at: '2026-03-01T11:00:00.000Z',
  ended_at: '2026-03-01T12:00:00.000Z',
}

/** The fields each schema must list as required: a guard against a field silently becoming optional. */
export const REQUIRED_FIELDS: Record<SchemaName, string[]> = {
  BaseSchema: ['schema_version', 'record_id', 'user_id', 'timestamp', 'source', 'origin'],
  SessionManagerStartInput: ['schema_version', 'record_id', 'user_id', 'timestamp', 'source', 'origin'],
  SessionManagerEndInput: [
    'schema_version',
    'record_id',
    'user_id',
    'timestamp',
    'source',
    'origin',
    'session_id',
  ],
  SessionManagerTouchInput: [
    'schema_version',
    'record_id',
    'user_id',
    'timestamp',
    'source',
    'origin',
    'session_id',
  ],
  SessionManagerStartOutput: [
    'schema_version',
    'record_id',
    'user_id',
    'session_id',
    'timestamp',
    'source',
    'origin',
    'event',
    'input_record_id',
    'input_source',
    'input_digest',
    'idle_timeout_ms',
    'max_duration_ms',
  ],
  SessionManagerTouchOutput: [
    'schema_version',
    'record_id',
    'user_id',
    'session_id',
    'timestamp',
    'source',
    'origin',
    'event',
    'input_record_id',
    'input_source',
    'input_digest',
  ],
  SessionManagerEndOutput: [
    'schema_version',
    'record_id',
    'user_id',
    'session_id',
    'timestamp',
    'source',
    'origin',
    'event',
    'reason',
    'started_at',
    'ended_at',
  ],
  SessionLifecycleEvent: ['event'],
  SessionTaggedRecord: [
    'schema_version',
    'record_id',
    'user_id',
    'timestamp',
    'source',
    'origin',
    'session_id',
  ],
  ErrorResponse: ['error', 'message'],
}

export const VALID_TIMESTAMPS: Fixture[] = [
  { name: 'an ordinary instant', value: '2026-03-01T12:00:00.000Z' },
  { name: 'Feb 29 of 2024 (leap year)', value: '2024-02-29T08:30:15.250Z' },
  { name: 'Feb 29 of 2000 (divisible by 400)', value: '2000-02-29T00:00:00.000Z' },
  { name: 'the last millisecond of a year', value: '2026-12-31T23:59:59.999Z' },
  { name: 'Apr 30', value: '2026-04-30T00:00:00.000Z' },
  { name: 'the Unix epoch', value: '1970-01-01T00:00:00.000Z' },
]

export const INVALID_TIMESTAMPS: Fixture[] = [
  { name: 'a +00:00 offset instead of Z', value: '2026-03-01T12:00:00.000+00:00' },
  { name: 'no milliseconds', value: '2026-03-01T12:00:00Z' },
  { name: '2 fractional digits', value: '2026-03-01T12:00:00.00Z' },
  { name: '4 fractional digits', value: '2026-03-01T12:00:00.0000Z' },
  { name: 'a lowercase z', value: '2026-03-01T12:00:00.000z' },
  { name: 'Feb 30', value: '2026-02-30T12:00:00.000Z' },
  { name: 'Feb 29 of 2025 (not a leap year)', value: '2025-02-29T12:00:00.000Z' },
  { name: 'Feb 29 of 1900 (century not divisible by 400)', value: '1900-02-29T12:00:00.000Z' },
  { name: 'Apr 31', value: '2026-04-31T12:00:00.000Z' },
  { name: 'month 13', value: '2026-13-01T12:00:00.000Z' },
  { name: 'month 00', value: '2026-00-10T12:00:00.000Z' },
  { name: 'hour 24', value: '2026-03-01T24:00:00.000Z' },
  { name: 'minute 60', value: '2026-03-01T12:60:00.000Z' },
  { name: 'a leap second', value: '2026-12-31T23:59:60.000Z' },
  { name: 'a space instead of T', value: '2026-03-01 12:00:00.000Z' },
  { name: 'a trailing newline', value: '2026-03-01T12:00:00.000Z\n' },
  { name: 'a date only', value: '2026-03-01' },
  { name: 'epoch milliseconds', value: 1772366400000 },
  { name: 'an empty string', value: '' },
]

export const VALID_ULIDS: Fixture[] = [
  { name: 'the smallest ULID', value: '00000000000000000000000000' },
  { name: 'the largest ULID', value: '7ZZZZZZZZZZZZZZZZZZZZZZZZZ' },
]

export const INVALID_ULIDS: Fixture[] = [
  { name: 'lowercase', value: '01jnc3g8z9x7w6v5t4s3r2q1p0' },
  { name: '25 characters', value: '01JNC3G8Z9X7W6V5T4S3R2Q1P' },
  { name: '27 characters', value: '01JNC3G8Z9X7W6V5T4S3R2Q1P00' },
  { name: 'the letter I', value: '01JNC3G8Z9X7W6V5T4S3R2Q1PI' },
  { name: 'the letter L', value: '01JNC3G8Z9X7W6V5T4S3R2Q1PL' },
  { name: 'the letter O', value: '01JNC3G8Z9X7W6V5T4S3R2Q1PO' },
  { name: 'the letter U', value: '01JNC3G8Z9X7W6V5T4S3R2Q1PU' },
  { name: 'a first character above 7', value: '81JNC3G8Z9X7W6V5T4S3R2Q1P0' },
  { name: 'a UUID', value: '0192b4e8-8f6a-7c3d-9e21-4b5a6c7d8e9f' },
  { name: 'a number', value: 1234 },
]

export const VALID_IDENTIFIERS: Fixture[] = [
  { name: 'one character', value: 'u' },
  { name: '128 characters', value: 'x'.repeat(128) },
  { name: 'punctuation at both ends of printable ASCII', value: '!user~' },
  { name: 'an email address', value: 'carer@example.org' },
]

export const INVALID_IDENTIFIERS: Fixture[] = [
  { name: 'empty', value: '' },
  { name: '129 characters', value: 'x'.repeat(129) },
  { name: 'a space', value: 'user 42' },
  { name: 'a tab', value: 'user\t42' },
  { name: 'a newline', value: 'user\n42' },
  { name: 'a NUL character', value: 'user\u000042' },
  { name: 'DEL', value: 'user\u007f42' },
  { name: 'U+2028 line separator', value: 'user\u202842' },
  { name: 'non-ASCII letters', value: 'usér-42' },
  { name: 'an emoji', value: 'user-\u{1F600}' },
  { name: 'a number', value: 42 },
  { name: 'null', value: null },
]

const INVALID_DIGESTS: Fixture[] = [
  { name: 'no sha256: prefix', value: INPUT_DIGEST.slice('sha256:'.length) },
  { name: 'upper-case hex', value: INPUT_DIGEST.toUpperCase().replace('SHA256', 'sha256') },
  { name: '63 hex digits', value: INPUT_DIGEST.slice(0, -1) },
  { name: 'another algorithm', value: INPUT_DIGEST.replace('sha256', 'sha1') },
]

const INVALID_SOURCES: Fixture[] = [
  { name: 'empty', value: '' },
  { name: 'upper case', value: 'UI' },
  { name: 'a leading digit', value: '1ui' },
  { name: 'a space', value: 'caregiver app' },
  { name: '65 characters', value: `a${'b'.repeat(64)}` },
]

export const VALID_METADATA: Fixture[] = [
  { name: 'empty', value: {} },
  { name: 'string, number and boolean values', value: { device: 'tablet', battery: 0.8, docked: true } },
  { name: '32 keys', value: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`key_${i}`, i])) },
  { name: 'a 64-character key', value: { [`k${'x'.repeat(63)}`]: 1 } },
  { name: 'a 1024-character value', value: { note: 'x'.repeat(1024) } },
]

export const INVALID_METADATA: Fixture[] = [
  {
    name: '33 keys (too many)',
    value: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`key_${i}`, i])),
  },
  { name: 'an upper-case key', value: { Device: 'tablet' } },
  { name: 'a key with a dash', value: { 'app-version': '1.2' } },
  { name: 'a key starting with a digit', value: { '1st': true } },
  { name: 'a 65-character key', value: { [`k${'x'.repeat(64)}`]: 1 } },
  { name: 'a nested object', value: { device: { kind: 'tablet' } } },
  { name: 'an array value', value: { tags: ['a'] } },
  { name: 'a null value', value: { device: null } },
  { name: 'a 1025-character value', value: { note: 'x'.repeat(1025) } },
  { name: 'an array instead of an object', value: ['device'] },
]

const with_ = (record: Json, patch: Json): Json => ({ ...record, ...patch })
const without = (record: Json, ...names: string[]): Json =>
  Object.fromEntries(Object.entries(record).filter(([name]) => !names.includes(name)))

function fieldCases(record: Json, field: string, cases: Fixture[], prefix: string): Fixture[] {
  return cases.map((c) => ({
    name: `${prefix} ${field}: ${c.name}`,
    value: with_(record, { [field]: c.value }),
  }))
}

/** Cases every record with the BaseSchema fields shares, valid and invalid. */
function baseCases(record: Json, name: SchemaName): FixtureSet {
  const valid: Fixture[] = [
    { name: 'the example record', value: record },
    {
      name: 'origin system without performer_id',
      value: with_(without(record, 'performer_id'), { origin: 'system' }),
    },
    { name: 'origin system with performer_id', value: with_(record, { origin: 'system' }) },
    ...fieldCases(record, 'timestamp', VALID_TIMESTAMPS, 'valid'),
    ...fieldCases(record, 'record_id', VALID_ULIDS, 'valid'),
    ...fieldCases(record, 'user_id', VALID_IDENTIFIERS, 'valid'),
    ...fieldCases(record, 'performer_id', VALID_IDENTIFIERS.slice(0, 2), 'valid'),
  ]
  const invalid: Fixture[] = [
    ...fieldCases(record, 'timestamp', INVALID_TIMESTAMPS, 'invalid'),
    ...fieldCases(record, 'record_id', INVALID_ULIDS, 'invalid'),
    ...fieldCases(record, 'user_id', INVALID_IDENTIFIERS, 'invalid'),
    ...fieldCases(record, 'performer_id', INVALID_IDENTIFIERS.slice(0, 4), 'invalid'),
    { name: 'origin human without performer_id', value: without(record, 'performer_id') },
    { name: 'an unknown origin', value: with_(record, { origin: 'robot' }) },
    { name: 'schema_version 1.0', value: with_(record, { schema_version: '1.0' }) },
    { name: 'schema_version 2.0', value: with_(record, { schema_version: '2.0' }) },
    { name: 'schema_version as a number', value: with_(record, { schema_version: 1.1 }) },
    ...REQUIRED_FIELDS[name].map((field) => ({ name: `missing ${field}`, value: without(record, field) })),
    { name: 'an array instead of an object', value: [record] },
    { name: 'null', value: null },
  ]
  return { valid, invalid }
}

function inputCases(record: Json, name: SchemaName): FixtureSet {
  const { valid, invalid } = baseCases(record, name)
  return {
    valid: [
      ...valid,
      ...fieldCases(record, 'source', [{ name: 'a dotted name', value: 'caregiver_app.v2' }], 'valid'),
    ],
    invalid: [
      ...invalid,
      ...fieldCases(record, 'source', INVALID_SOURCES, 'invalid'),
      { name: 'an unknown property', value: with_(record, { priority: 'high' }) },
      {
        name: 'a __proto__ property (as JSON.parse creates it)',
        value: JSON.parse(JSON.stringify(record).replace(/^\{/, '{"__proto__":{"admin":true},')),
      },
    ],
  }
}

function outputCases(record: Json, name: SchemaName): FixtureSet {
  const { valid, invalid } = baseCases(record, name)
  return {
    valid: [
      ...valid,
      // Consumers must ignore output fields they do not know: v1.x may add optional ones.
      { name: 'an unknown (future optional) output field', value: with_(record, { future_field: 1 }) },
    ],
    invalid: [
      ...invalid,
      { name: 'source other than session_manager', value: with_(record, { source: 'ui' }) },
      ...fieldCases(record, 'session_id', INVALID_ULIDS.slice(0, 3), 'invalid'),
      ...fieldCases(record, 'input_record_id', INVALID_ULIDS.slice(0, 2), 'invalid'),
      ...fieldCases(record, 'input_source', INVALID_SOURCES.slice(0, 2), 'invalid'),
      ...fieldCases(record, 'input_digest', INVALID_DIGESTS, 'invalid'),
      { name: 'an event name of another schema', value: with_(record, { event: 'session.pause' }) },
    ],
  }
}

function startInput(): FixtureSet {
  const base = inputCases(START_INPUT, 'SessionManagerStartInput')
  return {
    valid: [
      ...base.valid,
      { name: 'without metadata', value: without(START_INPUT, 'metadata') },
      ...fieldCases(START_INPUT, 'metadata', VALID_METADATA, 'valid'),
    ],
    invalid: [
      ...base.invalid,
      ...fieldCases(START_INPUT, 'metadata', INVALID_METADATA, 'invalid'),
      {
        name: 'a session_id (start inputs cannot name one)',
        value: with_(START_INPUT, { session_id: SESSION_ID }),
      },
    ],
  }
}

function sessionInput(name: SchemaName): FixtureSet {
  const base = inputCases(SESSION_INPUT, name)
  return {
    valid: base.valid,
    invalid: [
      ...base.invalid,
      ...fieldCases(SESSION_INPUT, 'session_id', INVALID_ULIDS, 'invalid'),
      { name: 'metadata (only start inputs carry it)', value: with_(SESSION_INPUT, { metadata: {} }) },
    ],
  }
}

const INVALID_DURATIONS: Fixture[] = [
  { name: 'zero', value: 0 },
  { name: 'negative', value: -1 },
  { name: 'a fraction', value: 1.5 },
  { name: 'a string', value: '900000' },
]

function startOutput(): FixtureSet {
  const base = outputCases(START_OUTPUT, 'SessionManagerStartOutput')
  return {
    valid: [
      ...base.valid,
      { name: 'without metadata', value: without(START_OUTPUT, 'metadata') },
      { name: 'a 1 ms idle timeout', value: with_(START_OUTPUT, { idle_timeout_ms: 1 }) },
    ],
    invalid: [
      ...base.invalid,
      ...fieldCases(START_OUTPUT, 'metadata', INVALID_METADATA.slice(0, 2), 'invalid'),
      ...fieldCases(START_OUTPUT, 'idle_timeout_ms', INVALID_DURATIONS, 'invalid'),
      ...fieldCases(START_OUTPUT, 'max_duration_ms', INVALID_DURATIONS, 'invalid'),
    ],
  }
}

function touchOutput(): FixtureSet {
  return outputCases(TOUCH_OUTPUT, 'SessionManagerTouchOutput')
}

function endOutput(): FixtureSet {
  const base = outputCases(END_OUTPUT, 'SessionManagerEndOutput')
  const timeoutEnd = without(
    with_(END_OUTPUT, { origin: 'system' }),
    'performer_id',
    'input_record_id',
    'input_source',
    'input_digest',
  )
  return {
    valid: [
      ...base.valid,
      {
        name: 'an idle timeout end without input fields',
        value: with_(timeoutEnd, { reason: 'idle_timeout' }),
      },
      {
        name: 'a max duration end without input fields',
        value: with_(timeoutEnd, { reason: 'max_duration' }),
      },
    ],
    invalid: [
      ...base.invalid,
      { name: 'reason "timeout" (not in the enum)', value: with_(END_OUTPUT, { reason: 'timeout' }) },
      { name: 'reason in upper case', value: with_(END_OUTPUT, { reason: 'EXPLICIT' }) },
      ...fieldCases(END_OUTPUT, 'started_at', INVALID_TIMESTAMPS.slice(0, 6), 'invalid'),
      ...fieldCases(END_OUTPUT, 'ended_at', INVALID_TIMESTAMPS.slice(0, 6), 'invalid'),
    ],
  }
}

function lifecycleEvent(): FixtureSet {
  // Every output fixture is also a lifecycle-log fixture: an invalid start event must not slip
  // through as a touch or end event, since `event` tells the variants apart.
  const parts: [string, FixtureSet][] = [
    ['start', startOutput()],
    ['touch', touchOutput()],
    ['end', endOutput()],
  ]
  const prefixed = (kind: 'valid' | 'invalid') =>
    parts.flatMap(([label, set]) => set[kind].map((f) => ({ name: `${label}: ${f.name}`, value: f.value })))
  return {
    valid: prefixed('valid'),
    invalid: [
      ...prefixed('invalid'),
      { name: 'an unknown event', value: with_(TOUCH_OUTPUT, { event: 'session.resume' }) },
      { name: 'a start event with end fields only', value: with_(END_OUTPUT, { event: 'session.start' }) },
      { name: 'an input record', value: SESSION_INPUT },
    ],
  }
}

function errorResponseCases(): FixtureSet {
  const minimal = { error: 'session_id_missing', message: 'session_id is required.' }
  return {
    valid: [
      { name: 'code and message only', value: minimal },
      { name: 'with field errors', value: { ...minimal, fields: [{ path: '/timestamp', message: 'bad' }] } },
      {
        name: 'with an empty path (the whole record)',
        value: { ...minimal, fields: [{ path: '', message: 'x' }] },
      },
      {
        name: 'with details',
        value: { ...minimal, details: { reason: 'idle_timeout', ended: true, n: 1, x: null } },
      },
      { name: 'with an unknown future field', value: { ...minimal, request_id: 'abc' } },
    ],
    invalid: [
      { name: 'missing error', value: without(minimal, 'error') },
      { name: 'missing message', value: without(minimal, 'message') },
      { name: 'an upper-case code', value: { ...minimal, error: 'SessionMissing' } },
      { name: 'a code with a dash', value: { ...minimal, error: 'session-missing' } },
      { name: 'an empty code', value: { ...minimal, error: '' } },
      { name: 'a numeric message', value: { ...minimal, message: 400 } },
      { name: 'fields as an object', value: { ...minimal, fields: { path: '/x', message: 'y' } } },
      { name: 'a field error without path', value: { ...minimal, fields: [{ message: 'y' }] } },
      { name: 'a field error without message', value: { ...minimal, fields: [{ path: '/x' }] } },
      { name: 'a nested object in details', value: { ...minimal, details: { session: { id: 'x' } } } },
      { name: 'an array in details', value: { ...minimal, details: { ids: ['x'] } } },
      { name: 'a string instead of an object', value: 'session_id_missing' },
    ],
  }
}

function sessionTaggedRecord(): FixtureSet {
  const { valid, invalid } = baseCases(SESSION_INPUT, 'SessionTaggedRecord')
  const workerLine = with_(without(SESSION_INPUT, 'performer_id'), {
    source: 'sample_worker',
    origin: 'system',
    event: 'infer.received',
    input_record_id: INPUT_RECORD_ID,
  })
  return {
    valid: [
      ...valid,
      { name: "a worker's log line with its own fields", value: workerLine },
      { name: 'a lifecycle event (session_manager output)', value: START_OUTPUT },
    ],
    invalid: [
      ...invalid,
      { name: 'an untagged record (no session_id)', value: without(SESSION_INPUT, 'session_id') },
      ...fieldCases(SESSION_INPUT, 'session_id', INVALID_ULIDS, 'invalid'),
    ],
  }
}

/** Fixtures for every schema in SCHEMAS; the catalog test fails if a schema has none. */
export const FIXTURES: Record<SchemaName, FixtureSet> = {
  BaseSchema: inputCases(BASE, 'BaseSchema'),
  SessionManagerStartInput: startInput(),
  SessionManagerEndInput: sessionInput('SessionManagerEndInput'),
  SessionManagerTouchInput: sessionInput('SessionManagerTouchInput'),
  SessionManagerStartOutput: startOutput(),
  SessionManagerTouchOutput: touchOutput(),
  SessionManagerEndOutput: endOutput(),
  SessionLifecycleEvent: lifecycleEvent(),
  SessionTaggedRecord: sessionTaggedRecord(),
  ErrorResponse: errorResponseCases(),
}
