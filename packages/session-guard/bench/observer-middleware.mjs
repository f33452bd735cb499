// The services' request-observer middlewares as the guard benchmark wires them, in their own module so
// a CPU profile can tell the observer's frames from the benchmark's routes.
// The two observer middlewares below mirror the services' own (services/sample-worker
// src/observability/express-observer.ts and services/session-manager src/observability/hono-observer.ts),
// minus the 503-cause and test-runtime branches, which these routes never reach.

export function expressObserver(observer) {
  return function observeRequest(req, res, next) {
    const request = observer.begin(req.method, req.headers)
    res.setHeader('x-request-id', request.requestId)
    res.once('close', () => {
      const length = res.getHeader('content-length')
      request.end({
        route: req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched',
        status: res.writableFinished ? res.statusCode : 499,
        bytes: length === undefined ? undefined : Number(length),
        sessionId: req.sessionId,
      })
    })
    next()
  }
}

export async function honoObserver(observer) {
  const { routePath } = await import('hono/route')
  return async function observeRequest(c, next) {
    const incoming = c.env.incoming
    const outgoing = c.env.outgoing
    const request = observer.begin(c.req.method, incoming.headers)
    outgoing.setHeader('x-request-id', request.requestId)
    await next()
    const status = c.res.status
    const path = routePath(c)
    const outcome = {
      route: path === '*' || path === '/*' ? 'unmatched' : path,
      status,
      sessionId: c.get('sessionId'),
    }
    const record = () => {
      const length = outgoing.getHeader('content-length')
      request.end(
        outgoing.writableFinished
          ? { ...outcome, bytes: length === undefined ? undefined : Number(length) }
          : { ...outcome, status: 499 },
      )
    }
    if (outgoing.closed || outgoing.destroyed) record()
    else outgoing.once('close', record)
  }
}
