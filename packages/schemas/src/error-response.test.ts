import { readFileSync } from 'node:fs'
// Named import: the default import of this CommonJS module has no construct signature under NodeNext.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, type ErrorCode, ErrorResponse, errorResponse } from './error-response.js'
import { compileValidator } from './validation.js'

const HTTP_STATUSES = [400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 500, 503]
const CODES = Object.keys(ERROR_CODES) as ErrorCode[]
const validateErrorResponse = compileValidator(ErrorResponse)
const ajvValidate = new Ajv2020({ strict: true }).compile(
  JSON.parse(readFileSync(new URL('../dist/json-schema/ErrorResponse.json', import.meta.url), 'utf8')),
)

describe('ERROR_CODES', () => {
  it.each(CODES)('gives %s a status from the documented set and a message', (code) => {
    expect(HTTP_STATUSES).toContain(ERROR_CODES[code].status)
    expect(ERROR_CODES[code].message.length).toBeGreaterThan(0)
  })

  it('uses snake_case codes that match the ErrorResponse pattern', () => {
    for (const code of CODES) expect(code).toMatch(/^[a-z][a-z0-9_]*$/)
  })
})

describe('errorResponse', () => {
  it.each(CODES)('builds a %s body that matches ErrorResponse (TypeBox and Ajv)', (code) => {
    const { status, body } = errorResponse(code)
    expect(status).toBe(ERROR_CODES[code].status)
    expect(body).toEqual({ error: code, message: ERROR_CODES[code].message })
    expect(validateErrorResponse.check(body)).toBe(true)
    expect(ajvValidate(body)).toBe(true)
  })

  it('carries field errors, details and a custom message', () => {
    const { status, body } = errorResponse('validation_failed', {
      message: 'Two fields are wrong.',
      fields: [
        { path: '/timestamp', message: 'must be UTC' },
        { path: '/performer_id', message: 'is required when origin is "human"' },
      ],
      details: { limit: 32, retry: false, reason: 'x', previous: null },
    })
    expect(status).toBe(400)
    expect(body).toEqual({
      error: 'validation_failed',
      message: 'Two fields are wrong.',
      fields: [
        { path: '/timestamp', message: 'must be UTC' },
        { path: '/performer_id', message: 'is required when origin is "human"' },
      ],
      details: { limit: 32, retry: false, reason: 'x', previous: null },
    })
    expect(validateErrorResponse.check(body)).toBe(true)
    expect(ajvValidate(body)).toBe(true)
  })

  it('leaves out an empty fields list', () => {
    expect(errorResponse('validation_failed', { fields: [] }).body).not.toHaveProperty('fields')
  })
})
