import type { Duplex } from 'node:stream'
import { type ErrorCode, errorResponse } from '@care/schemas'

/**
 * The part of a node:http server this needs: an Express `app.listen()` server and a
 * `@hono/node-server` `ServerType` both qualify.
 */
export interface ClientErrorSource {
  on(event: 'clientError', listener: (err: Error & { code?: string }, socket: Duplex) => void): unknown
}

/**
 * Answers requests that node's HTTP parser rejects before any route sees them (a lying or
 * non-numeric Content-Length, Content-Length with chunked, a broken chunk, oversized headers) with the
 * shared JSON error shape instead of node's bare `400 Bad Request`, then closes the connection,
 * whose framing can no longer be trusted. Resets and timeouts just close it.
 *
 * @example
 * import { answerClientErrorsAsJson } from '@care/session-guard/node'
 * const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 7400 })
 * answerClientErrorsAsJson(server)
 */
export function answerClientErrorsAsJson(server: ClientErrorSource): void {
  server.on('clientError', function answerClientError(err, socket) {
    if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
      socket.destroy()
      return
    }
    const [code, message]: [ErrorCode, string] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? ['payload_too_large', 'The request headers are too large.']
        : ['malformed_json', 'The request is not valid HTTP/1.1 (check Content-Length and chunked encoding).']
    const { status, body } = errorResponse(code, { message })
    const text = JSON.stringify(body)
    socket.end(
      `HTTP/1.1 ${status} ${status === 413 ? 'Payload Too Large' : 'Bad Request'}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(text)}\r\n` +
        'Connection: close\r\n\r\n' +
        text,
    )
  })
}

export {
  type ArrivedNodeRequestBody,
  type NodeRequestBody,
  OVER_LIMIT,
  readUnreadBody,
  takeArrivedBody,
  unreadNodeRequest,
} from './request-body.js'
