import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import express from 'express'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'

// The adapters lean on two framework behaviours that are public fields/state but not documented
// APIs. These tests pin them against the installed versions, so an upgrade that changes them fails
// here (with the version in the name) instead of silently breaking body handling.
const require = createRequire(import.meta.url)
const honoVersion = versionOf(require.resolve('hono'), 'hono')
const bodyParserVersion: string = require(
  require.resolve('body-parser/package.json', { paths: [require.resolve('express')] }),
).version

/** The version of the package `name` that `entry` (a resolved file inside it) belongs to. */
function versionOf(entry: string, name: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (manifest.name === name) return manifest.version
    } catch {}
  }
  throw new Error(`no package.json of ${name} above ${entry}`)
}

const servers: { close(): void; closeAllConnections(): void }[] = []
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    server.close()
  }
})

describe(`hono ${honoVersion}: c.req.bodyCache`, () => {
  it('is an object whose text promise c.req.text() and c.req.json() answer from', async () => {
    const app = new Hono()
    app.post('/x', async (c) => {
      const cache = (c.req as { bodyCache?: unknown }).bodyCache as { text?: Promise<string> }
      expect(typeof cache).toBe('object')
      cache.text = Promise.resolve('{"from":"cache"}')
      return c.json({ text: await c.req.text(), json: await c.req.json() })
    })
    const res = await app.request('/x', { method: 'POST', body: '{"from":"stream"}' })
    expect(await res.json()).toEqual({ text: '{"from":"cache"}', json: { from: 'cache' } })
  })
})

describe(`body-parser ${bodyParserVersion} (express.json())`, () => {
  it('skips a request whose body stream a middleware before it already consumed, keeping req.body', async () => {
    const app = express()
    app.use((req, _res, next) => {
      req.on('data', () => {})
      req.on('end', () => {
        req.body = { read: 'by the guard' }
        next()
      })
    })
    app.use(express.json())
    app.post('/x', (req, res) => {
      res.json(req.body)
    })
    const server = app.listen(0, '127.0.0.1')
    servers.push(server)
    await new Promise<void>((resolve) => server.once('listening', resolve))
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"read":"by body-parser"}',
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ read: 'by the guard' })
  })
})
