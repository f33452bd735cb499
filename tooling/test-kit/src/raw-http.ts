import { connect } from 'node:net'

/**
 * Writes raw bytes to 127.0.0.1:`port`, half-closes, and resolves with everything the server sent back
 * (as latin1) once it closes, resets, or `timeout` ms pass. For requests `fetch` cannot send: lying
 * Content-Length, broken chunking, oversized headers.
 */
export function rawExchange(port: number, request: string | Buffer, timeout = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const done = () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    }
    const timer = setTimeout(() => {
      socket.destroy()
      done()
    }, timeout)
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', (err) => ((err as { code?: string }).code === 'ECONNRESET' ? done() : reject(err)))
    socket.on('close', done)
    socket.end(request)
  })
}

/** The status codes of every response in a raw reply (keep-alive may carry several). */
export function statusesOf(reply: string): number[] {
  return [...reply.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
}

/** The JSON bodies of every response in a raw reply that has one. */
export function jsonBodiesOf(reply: string): unknown[] {
  return [...reply.matchAll(/\r\n\r\n(\{.*?\})(?=HTTP\/1\.1|$)/gs)].map((m) => JSON.parse(m[1] as string))
}

/**
 * Requests with broken HTTP framing for one route: `head(framingHeaders)` returns the request line and
 * headers (ending in the blank line) with the given framing headers inserted, `body` a valid JSON body.
 * Every case must be answered with a 4xx in the shared error shape and must write nothing.
 */
export function malformedFramings(
  head: (framing: string) => string,
  body: () => string,
): ReadonlyArray<readonly [name: string, build: () => string]> {
  return [
    [
      'Content-Length larger than the body (client gives up)',
      () => `${head('Content-Length: 500\r\n')}{"a":1}`,
    ],
    ['Content-Length smaller than the body', () => `${head('Content-Length: 5\r\n')}${body()}`],
    ['Content-Length over the limit', () => `${head('Content-Length: 20000\r\n')}${'x'.repeat(20_000)}`],
    ['Content-Length over the limit, body never sent', () => head('Content-Length: 99999999\r\n')],
    ['a negative Content-Length', () => `${head('Content-Length: -1\r\n')}{}`],
    ['a non-numeric Content-Length', () => `${head('Content-Length: abc\r\n')}{}`],
    ['two different Content-Lengths', () => `${head('Content-Length: 2\r\nContent-Length: 3\r\n')}{}`],
    [
      'Content-Length and chunked together',
      () => `${head('Content-Length: 2\r\nTransfer-Encoding: chunked\r\n')}2\r\n{}\r\n0\r\n\r\n`,
    ],
    [
      'a chunked body over the limit',
      () =>
        `${head('Transfer-Encoding: chunked\r\n')}${`400\r\n${'x'.repeat(0x400)}\r\n`.repeat(20)}0\r\n\r\n`,
    ],
    ['a chunked body cut off mid-chunk', () => `${head('Transfer-Encoding: chunked\r\n')}400\r\n{"a":`],
    ['a malformed chunk size', () => `${head('Transfer-Encoding: chunked\r\n')}zz\r\n{}\r\n0\r\n\r\n`],
    ['headers over the 16 KiB header limit', () => `${head(`X-Padding: ${'a'.repeat(20_000)}\r\n`)}{}`],
  ]
}
