import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { answerClientErrorsAsJson } from './index.js'

let server: Server | undefined
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())))

async function rawExchange(request: string): Promise<string> {
  server = createServer((_req, res) => res.end('handler ran'))
  answerClientErrorsAsJson(server)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk
    })
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')))
  })
}

describe('answerClientErrorsAsJson', () => {
  it('answers a request the HTTP parser rejects with the shared JSON error and closes', async () => {
    const text = await rawExchange('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}')
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    expect(text).toMatch(/Connection: close/)
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    expect(body).toMatchObject({ error: 'malformed_json' })
    expect(text).not.toContain('handler ran')
  })

  it('answers oversized headers with 413', async () => {
    const text = await rawExchange(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'payload_too_large' })
  })
})
