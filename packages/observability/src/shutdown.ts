import type { Server } from 'node:http'

/**
 * The connection errors a client causes by going away (reset, abort, premature close). During a
 * shutdown, or whenever a client hangs up mid-request, they are not the service's fault: log them
 * below error level.
 *
 * @example
 * if (isClientDisconnect(err)) logger.info({ code: err.code }, 'client went away')
 */
export function isClientDisconnect(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false
  const { code, name, message, cause } = err as {
    code?: unknown
    name?: unknown
    message?: unknown
    cause?: unknown
  }
  if (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ECONNABORTED' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ABORT_ERR' ||
    name === 'AbortError' ||
    message === 'aborted'
  )
    return true
  return cause !== undefined && cause !== err && isClientDisconnect(cause)
}

/**
 * Closes an HTTP server gracefully within a bound: stops accepting at once, closes keep-alive
 * connections as soon as they are idle, lets requests in flight finish for up to `graceMs`, then
 * destroys whatever connection is left (a stuck or slow client cannot hold the process open).
 * Resolves `true` when every request finished in time, `false` when connections had to be cut.
 *
 * @example
 * const clean = await closeGracefully(server, { graceMs: 10_000 })
 */
export function closeGracefully(server: Server, options: { graceMs: number }): Promise<boolean> {
  return new Promise((resolve) => {
    let forced = false
    const idle = setInterval(() => server.closeIdleConnections(), 50)
    const deadline = setTimeout(() => {
      forced = true
      server.closeAllConnections()
    }, options.graceMs)
    server.close(() => {
      clearInterval(idle)
      clearTimeout(deadline)
      resolve(!forced)
    })
    server.closeIdleConnections()
  })
}
