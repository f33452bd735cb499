import { compileValidator, ErrorResponse } from '@care/schemas'
import { describe, expect, it } from 'vitest'
import { BAD_OPTIONS, CONTRACT_CASES, type StartHarness } from './test-support/contract.js'
import { expressHarness } from './test-support/express-harness.js'
import { honoHarness, honoNodeServerHarness } from './test-support/hono-harness.js'

const isErrorResponse = compileValidator(ErrorResponse).check

const ADAPTERS: readonly [string, StartHarness][] = [
  ['express, no body parser', expressHarness('no parser')],
  ['express, express.json() before the guard', expressHarness('express.json() before')],
  ['express, express.json() after the guard', expressHarness('express.json() after')],
  ['hono, app.request()', honoHarness('middleware')],
  ['hono on @hono/node-server 2.x', honoNodeServerHarness(2, 'middleware')],
  ['hono on @hono/node-server 1.x', honoNodeServerHarness(1, 'middleware')],
  ['hono guarded(handler), app.request()', honoHarness('handler')],
  ['hono guarded(handler) on @hono/node-server 2.x', honoNodeServerHarness(2, 'handler')],
  ['hono guarded(handler) on @hono/node-server 1.x', honoNodeServerHarness(1, 'handler')],
]

describe.each(ADAPTERS)('session guard contract (%s)', (name, start) => {
  it.each(CONTRACT_CASES.map((c) => [c.name, c] as const))('%s', async (_case, contractCase) => {
    const { options, request } = contractCase
    const expected =
      name.includes('before the guard') && contractCase.whenAppParsedFirst
        ? contractCase.whenAppParsedFirst
        : contractCase.expected
    const harness = await start(options ?? {})
    try {
      const res = await harness.request(request)
      expect(res.status).toBe(expected.status)
      expect(res.contentType).toMatch(/^application\/json/)
      if ('echo' in expected) {
        expect(res.json).toMatchObject(expected.echo)
        expect(harness.handlerCalls()).toBe(1)
      } else {
        expect(res.json).toMatchObject({ error: expected.error })
        expect(isErrorResponse(res.json)).toBe(true)
        expect(JSON.stringify(res.json)).not.toMatch(/at .*\.(ts|js):\d+/)
        expect(harness.handlerCalls()).toBe(0)
      }
    } finally {
      await harness.close()
    }
  })

  it.each(BAD_OPTIONS.map((c) => [c.name, c.options] as const))(
    'throws when the factory is called with %s',
    async (_case, options) => {
      await expect(start(options)).rejects.toThrow(TypeError)
    },
  )
})
