import { ServerResponse } from 'node:http'
import {
  type HttpObserver,
  REQUEST_ID_HEADER,
  type RequestOutcome,
  withTraceContext,
} from '@care/observability'
import type { Context, MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import { nodeRequestOf } from '../http/node-request.js'

/**
 * Hono middleware that gives every request a request id (`x-request-id`, the caller's or a new
 * one, returned on the response), runs it inside its trace span when tracing is on, and records
 * it once answered: metrics by route template, one access-log line, and the span's route, status
 * and `session.id` (set by the session guard).
 *
 * @example
 * app.use(observeRequests(observer))
 */
export function observeRequests(observer: HttpObserver): MiddlewareHandler {
  return async function observeRequest(c, next) {
    const incoming = nodeRequestOf(c)
    const outgoing = nodeResponseOf(c)
    // Node's own header object when served by @hono/node-server: `c.req.raw.headers` would build a
    // Fetch `Headers` copy of every header on each request.
    const request = observer.begin(c.req.method, incoming ? incoming.headers : c.req.raw.headers)
    // On Node the id goes on the Node response itself, which every answer is written through (its
    // headers merge with the Fetch response's): no Fetch `Headers` is built or copied for it.
    if (outgoing) outgoing.setHeader(REQUEST_ID_HEADER, request.requestId)
    try {
      await withTraceContext(request.traceContext, next)
    } finally {
      if (!outgoing) c.header(REQUEST_ID_HEADER, request.requestId)
      const status = c.res.status
      const outcome: RequestOutcome = {
        route: routeTemplateOf(c, status),
        status,
        bytes: undefined,
        sessionId: sessionIdOf(c),
        cause: status === 503 ? await errorCodeOf(c.res) : undefined,
      }
      if (outgoing) {
        // Served by @hono/node-server: record once the response is written, with its real size.
        // A response never finished (client gone, or cut off by a shutdown) is recorded as 499.
        const record = () => {
          if (outgoing.writableFinished) outcome.bytes = bytesOf(outgoing)
          else {
            outcome.status = CLIENT_CLOSED_REQUEST
            outcome.cause = undefined
          }
          request.end(outcome)
        }
        if (outgoing.closed || outgoing.destroyed) record()
        // 'close' comes once per response: `on` spares the wrapper `once` would allocate.
        else outgoing.on('close', record)
      } else {
        request.end({ ...outcome, bytes: await bodyBytes(c.res) })
      }
    }
  }
}

/** The de-facto status (nginx's) for a request whose client went away before the answer was sent. */
const CLIENT_CLOSED_REQUEST = 499

function nodeResponseOf(c: Context): ServerResponse | undefined {
  const outgoing: unknown = (c.env as { outgoing?: unknown } | undefined)?.outgoing
  return outgoing instanceof ServerResponse ? outgoing : undefined
}

function bytesOf(outgoing: ServerResponse): number | undefined {
  const length = outgoing.getHeader('content-length')
  return length === undefined ? undefined : Number(length)
}

/** Without a Node response (`app.request` in tests, other runtimes): the body's size. */
async function bodyBytes(res: Response): Promise<number | undefined> {
  const length = res.headers.get('content-length')
  if (length !== null) return Number(length)
  return res.body ? (await res.clone().arrayBuffer()).byteLength : 0
}

function routeTemplateOf(c: Context, status: number): string {
  const path = routePath(c)
  // Only this middleware matched: an unknown path, which must not become a label value.
  return path === '*' || path === '/*' ? (status === 404 ? 'unmatched' : 'other') : path
}

function sessionIdOf(c: Context): string | undefined {
  const id: unknown = c.get('sessionId' as never)
  return typeof id === 'string' ? id : undefined
}

async function errorCodeOf(res: Response): Promise<string> {
  try {
    const body = (await res.clone().json()) as { error?: unknown }
    return typeof body.error === 'string' ? body.error : 'unknown'
  } catch {
    return 'unknown'
  }
}
