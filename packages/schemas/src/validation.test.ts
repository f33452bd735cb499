import { describe, expect, it } from 'vitest'
import { SCHEMAS } from './catalog.js'
import { BASE, END_OUTPUT, FIXTURES, type SchemaName, SESSION_ID } from './test-support/fixtures.js'
import { compileValidator } from './validation.js'
import {
  validateSessionLifecycleEvent,
  validateSessionManagerEndInput,
  validateSessionManagerEndOutput,
  validateSessionManagerStartInput,
} from './validators.js'

const { performer_id: _performer, ...anonymous } = BASE
const endInput = { ...BASE, session_id: SESSION_ID }

function fieldsOf(result: ReturnType<typeof validateSessionManagerStartInput.validate>) {
  if (result.ok) throw new Error('expected the record to be rejected')
  return result.fields
}

describe('validate() field errors', () => {
  it('returns the value unchanged when the record is valid', () => {
    expect(validateSessionManagerStartInput.validate(BASE)).toEqual({ ok: true, value: BASE })
  })

  it('points at /performer_id when a human input names no performer', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate(anonymous))).toEqual([
      { path: '/performer_id', message: 'is required when origin is "human"' },
    ])
  })

  it('points at an unknown property and says it is not allowed', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate({ ...BASE, priority: 'high' }))).toEqual([
      { path: '/priority', message: 'is not allowed' },
    ])
  })

  it('escapes ~ and / in property names as RFC 6901 JSON Pointer tokens', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate({ ...BASE, 'a/b~c': 1 }))).toEqual([
      { path: '/a~1b~0c', message: 'is not allowed' },
    ])
  })

  it('points at /timestamp with a message that shows the expected form', () => {
    const fields = fieldsOf(
      validateSessionManagerStartInput.validate({ ...BASE, timestamp: '2026-03-01T12:00:00.000+00:00' }),
    )
    expect(fields.map((f) => f.path)).toEqual(['/timestamp'])
    expect(fields[0]?.message).toMatch(/UTC.*milliseconds.*Z/)
  })

  it('rejects Feb 29 of a common year at /timestamp', () => {
    const fields = fieldsOf(
      validateSessionManagerStartInput.validate({ ...BASE, timestamp: '2025-02-29T00:00:00.000Z' }),
    )
    expect(fields).toEqual([{ path: '/timestamp', message: expect.stringContaining('real UTC date-time') }])
  })

  it('explains a bad ULID at /record_id', () => {
    const fields = fieldsOf(
      validateSessionManagerStartInput.validate({ ...BASE, record_id: '81JNC3G8Z9X7W6V5T4S3R2Q1P0' }),
    )
    expect(fields).toEqual([{ path: '/record_id', message: expect.stringContaining('ULID') }])
  })

  it('explains an identifier with a control character at /user_id', () => {
    const fields = fieldsOf(validateSessionManagerStartInput.validate({ ...BASE, user_id: 'a\u0000b' }))
    expect(fields).toEqual([{ path: '/user_id', message: expect.stringContaining('printable ASCII') }])
  })

  it('says "is required" at /session_id when an end input has none', () => {
    const { session_id: _, ...noSession } = endInput
    expect(fieldsOf(validateSessionManagerEndInput.validate(noSession))).toEqual([
      { path: '/session_id', message: 'is required' },
    ])
  })

  it('lists the allowed values for origin', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate({ ...BASE, origin: 'robot' }))).toEqual([
      { path: '/origin', message: 'must be one of "human", "system"' },
    ])
  })

  it('names the one accepted schema_version', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate({ ...BASE, schema_version: '1.0' }))).toEqual([
      { path: '/schema_version', message: 'must be "1.1"' },
    ])
  })

  it('lists the allowed end reasons at /reason', () => {
    expect(fieldsOf(validateSessionManagerEndOutput.validate({ ...END_OUTPUT, reason: 'timeout' }))).toEqual([
      { path: '/reason', message: 'must be one of "explicit", "idle_timeout", "max_duration"' },
    ])
  })

  it('points into metadata at the offending key', () => {
    const fields = fieldsOf(
      validateSessionManagerStartInput.validate({ ...BASE, metadata: { Device: 'x', nested: { a: 1 } } }),
    )
    expect(fields).toEqual([
      { path: '/metadata/Device', message: 'is not allowed' },
      { path: '/metadata/nested', message: expect.stringContaining('must be string') },
    ])
  })

  it('reports the whole record ("" path) when the body is not an object', () => {
    expect(fieldsOf(validateSessionManagerStartInput.validate('hello'))).toEqual([
      { path: '', message: 'must be object' },
    ])
  })

  it('reports a lifecycle event by its own variant, picked by event', () => {
    const { reason: _, ...noReason } = END_OUTPUT
    expect(fieldsOf(validateSessionLifecycleEvent.validate(noReason))).toEqual([
      { path: '/reason', message: 'is required' },
    ])
  })

  it('names the allowed events when a lifecycle event has an unknown one', () => {
    expect(
      fieldsOf(validateSessionLifecycleEvent.validate({ ...END_OUTPUT, event: 'session.pause' })),
    ).toEqual([{ path: '/event', message: 'must be one of "session.start", "session.touch", "session.end"' }])
  })

  it('explains every invalid fixture with JSON Pointer paths and non-empty messages', () => {
    for (const name of Object.keys(SCHEMAS) as SchemaName[]) {
      const validator = compileValidator(SCHEMAS[name])
      for (const fixture of FIXTURES[name].invalid) {
        const result = validator.validate(fixture.value)
        expect(result.ok, `${name}: ${fixture.name}`).toBe(false)
        if (result.ok) continue
        expect(result.fields.length, `${name}: ${fixture.name}`).toBeGreaterThan(0)
        for (const field of result.fields) {
          expect(field.path, `${name}: ${fixture.name}`).toMatch(/^(\/([^~/]|~[01])*)*$/)
          expect(field.message.length, `${name}: ${fixture.name}`).toBeGreaterThan(0)
        }
      }
    }
  })
})
