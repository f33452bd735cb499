import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jsonBodiesOf, malformedFramings, rawExchange, statusesOf } from './raw-http.js'

describe('rawExchange', () => {
  let server: Server
  let port: number
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ path: req.url }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('returns every response of a keep-alive exchange with its status and JSON body', async () => {
    const one = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
    const reply = await rawExchange(port, one('/a') + one('/b'))
    expect(statusesOf(reply)).toEqual([200, 200])
    expect(jsonBodiesOf(reply)).toEqual([{ path: '/a' }, { path: '/b' }])
  })

  it("answers node's own 400 for each malformed framing that node's parser rejects", async () => {
    const head = (framing: string) => `POST /x HTTP/1.1\r\nHost: x\r\n${framing}\r\n`
    const cases = malformedFramings(head, () => '{}')
    const negative = cases.find(([name]) => name === 'a negative Content-Length')
    expect(negative).toBeDefined()
    expect(statusesOf(await rawExchange(port, negative![1]()))).toEqual([400])
  })

  it('resolves with what arrived so far when the server never closes the connection', async () => {
    const sockets: Socket[] = []
    const stuck = createNetServer({ allowHalfOpen: true }, (socket) => {
      sockets.push(socket)
      socket.write('HTTP/1.1 100 Continue\r\n')
    })
    await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve))
    const stuckPort = (stuck.address() as { port: number }).port
    expect(await rawExchange(stuckPort, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 200)).toBe(
      'HTTP/1.1 100 Continue\r\n',
    )
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => stuck.close(() => resolve()))
  })
})
