import { compileValidator, ErrorResponse } from '@care/schemas'
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express'
import { recordSessionOnActiveSpan } from '../active-span.js'
import {
  classifyContentType,
  parseGuardedBody,
  tooLarge,
  unsupportedCharset,
  unsupportedEncoding,
} from '../json-body.js'
import {
  ALL_SESSION_ID_SOURCES,
  DEFAULT_MAX_BODY_BYTES,
  type GuardConfig,
  resolveGuardConfig,
  type SessionGuardOptions,
} from '../options.js'
import { type GuardRejection, judgeVerifyResult, rejectWith } from '../rejection.js'
import {
  decideFromValues,
  extractSessionIdFromBody,
  extractSessionIdFromQuery,
  SESSION_ID_HEADER,
} from '../session-id.js'

declare global {
  namespace Express {
    interface Request {
      /** The `session_id` accepted by `sessionGuard()`; undefined on routes the guard does not cover. */
      sessionId?: string
    }
  }
}

/**
 * The error the Express guard passes to `next(err)`: an HTTP status and the shared error body.
 * `sessionErrorHandler()` renders it; your own error handler can too (`err.status`, `err.body`).
 *
 * @example
 * app.use((err, req, res, next) => {
 *   if (err instanceof SessionGuardError) return res.status(err.status).json(err.body)
 *   next(err)
 * })
 */
export class SessionGuardError extends Error {
  readonly status: number
  readonly body: ErrorResponse
  /** Marks the message as safe to show the client, as `http-errors` does. */
  readonly expose = true

  constructor(rejection: GuardRejection) {
    super(rejection.body.message)
    this.name = 'SessionGuardError'
    this.status = rejection.status
    this.body = rejection.body
  }
}

/** Options of the Express guard; `verify` receives the Express request. */
export type ExpressSessionGuardOptions = SessionGuardOptions<Request>

/**
 * Express middleware that lets a request through only when it carries one valid `session_id`
 * (header `x-session-id`, JSON body field or query parameter), sets `req.sessionId`, and otherwise
 * calls `next(err)` with a {@link SessionGuardError} (400, or 404/409 from `verify`), so the handler
 * never runs. Works with `express.json()` before it, after it, or absent: if the JSON body is not
 * parsed yet it reads it (up to `maxBodyBytes`) and leaves it on `req.body` for a later parser to skip.
 * Throws a `TypeError` at once for bad options.
 *
 * @example
 * const app = express()
 * app.post('/infer', sessionGuard({ exemptPaths: ['/healthz'] }), (req, res) => {
 *   res.json({ session_id: req.sessionId })
 * })
 * app.use(sessionErrorHandler())
 */
export function sessionGuard({
  sources = ALL_SESSION_ID_SOURCES,
  exemptPaths = [],
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  verify,
}: ExpressSessionGuardOptions = {}): RequestHandler {
  const config = resolveGuardConfig({ sources, exemptPaths, maxBodyBytes, verify })

  return function sessionGuardMiddleware(req: Request, _res: Response, next: NextFunction) {
    const url = req.originalUrl
    if (config.hasExemptions && config.isExempt(pathOf(url))) return next()
    if (config.readBody && needsBodyRead(req)) {
      readJsonBody(req, config.maxBodyBytes).then((read) => {
        if (read !== undefined) return next(new SessionGuardError(read))
        decide(config, req, url, next)
      }, next)
      return
    }
    decide(config, req, url, next)
  }
}

function decide(config: GuardConfig<Request>, req: Request, url: string, next: NextFunction) {
  const decided = decideFromValues(
    config.readHeader ? headerValue(req.headers[SESSION_ID_HEADER]) : undefined,
    config.readBody ? extractSessionIdFromBody(req.body) : undefined,
    config.readQuery ? extractSessionIdFromQuery(url) : undefined,
  )
  if (typeof decided !== 'string') return next(new SessionGuardError(rejectWith(decided.code)))
  const sessionId = decided
  if (config.verify === undefined) {
    req.sessionId = sessionId
    recordSessionOnActiveSpan(sessionId)
    return next()
  }
  const verify = config.verify
  // A hook that throws or answers nonsense reaches `next(err)`; `next()` itself stays outside the chain.
  Promise.resolve()
    .then(() => verify(sessionId, req))
    .then(judgeVerifyResult)
    .then((rejection) => {
      if (rejection) return next(new SessionGuardError(rejection))
      req.sessionId = sessionId
      recordSessionOnActiveSpan(sessionId)
      next()
    }, next)
}

function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' || value === undefined ? value : value.join(', ')
}

/** True when a JSON body is still in the stream: no parser ran before us and there is one to read. */
function needsBodyRead(req: Request): boolean {
  // Public state only: a parser that ran before us set `req.body`, or consumed the stream
  // (`readableEnded`). `complete` alone only says the body has arrived (e.g. while an earlier async
  // middleware ran); it can still be read.
  if (req.body !== undefined || req.readableEnded) return false
  const { headers } = req
  if (headers['transfer-encoding'] === undefined && headers['content-length'] === undefined) return false
  if (headers['content-length'] === '0') return false
  return classifyContentType(headers['content-type']) !== 'not-json'
}

/**
 * Reads and parses the JSON body into `req.body`; resolves undefined when it did, or the rejection
 * to answer with. One listener per stream event, removed only when the read stops early (over the
 * limit or failed): on a normal end the request is done with, and a late event is ignored.
 */
function readJsonBody(req: Request, limit: number): Promise<GuardRejection | undefined> {
  const { headers } = req
  if (classifyContentType(headers['content-type']) === 'json-unsupported-charset')
    return Promise.resolve(unsupportedCharset())
  const encoded = unsupportedEncoding(headers['content-encoding'])
  if (encoded) return Promise.resolve(encoded)
  const declared = Number(headers['content-length'])
  if (declared > limit) return Promise.resolve(tooLarge(limit))

  return new Promise((resolve) => {
    let first: Buffer | undefined
    let chunks: Buffer[] | undefined
    let size = 0
    let settled = false
    const stop = (rejection: GuardRejection) => {
      if (settled) return
      settled = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onAbort)
      req.off('close', onAbort)
      resolve(rejection)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        stop(tooLarge(limit))
        // Discard the rest so the connection can still carry our 413 answer.
        req.resume()
        return
      }
      if (first === undefined) first = chunk
      else if (chunks === undefined) chunks = [first, chunk]
      else chunks.push(chunk)
    }
    const onEnd = () => {
      if (settled) return
      settled = true
      const bytes = chunks ? Buffer.concat(chunks, size) : first
      const parsed = parseGuardedBody(bytes === undefined ? '' : bytes.toString('utf8'))
      if (!parsed.ok) return resolve(parsed.rejection)
      // A later `express.json()` (body-parser 2, Express 5's) skips a request whose stream has
      // finished, which this one now has; it keeps the parsed body we leave on `req.body`.
      req.body = parsed.value
      resolve(undefined)
    }
    // 'close' also follows every normal end: the answer is only built for a read still waiting.
    const onAbort = () => {
      if (!settled) stop(rejectWith('malformed_json', 'The request body could not be read.'))
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onAbort)
    req.on('close', onAbort)
  })
}

const isErrorResponse = compileValidator(ErrorResponse).check

/** Errors from `express.json()` (body-parser) carry a `type` and a 4xx `status`. */
interface BodyParserError {
  status?: unknown
  type?: unknown
}

function fromBodyParser(err: BodyParserError): GuardRejection | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return rejectWith('malformed_json')
    case 'entity.too.large':
      return rejectWith('payload_too_large')
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return rejectWith('unsupported_media_type')
    case 'request.aborted':
    case 'request.size.invalid':
      return rejectWith('malformed_json', 'The request body could not be read.')
    default:
      return undefined
  }
}

/**
 * Options of {@link sessionErrorHandler}: `onUnexpected` sees errors rendered as 500, e.g. to log them.
 *
 * @example
 * const options: SessionErrorHandlerOptions = { onUnexpected: (err) => logger.error({ err }, 'unhandled') }
 */
export interface SessionErrorHandlerOptions {
  onUnexpected?: (err: unknown, req: Request) => void
}

/**
 * The four-argument Express error handler to register last: renders guard errors, any error that
 * carries `status` (4xx/5xx) and a shared-shape `body`, and `express.json()` failures (malformed
 * JSON 400, too large 413, unsupported charset or encoding 415) as the shared JSON error shape.
 * Anything else becomes 500 `internal_error`; no stack or internal message ever reaches the client.
 *
 * @example
 * app.use(express.json())
 * app.post('/infer', sessionGuard(), handler)
 * app.use(sessionErrorHandler({ onUnexpected: (err) => logger.error({ err }) }))
 */
export function sessionErrorHandler({ onUnexpected }: SessionErrorHandlerOptions = {}): ErrorRequestHandler {
  return function renderSessionError(err: unknown, req: Request, res: Response, next: NextFunction) {
    // Too late to answer with JSON; Express's final handler closes the connection.
    if (res.headersSent) return next(err)
    const rejection = toRejection(err)
    if (rejection) {
      res.status(rejection.status).json(rejection.body)
      return
    }
    onUnexpected?.(err, req)
    const { status, body } = rejectWith('internal_error')
    res.status(status).json(body)
  }
}

function toRejection(err: unknown): GuardRejection | undefined {
  if (err instanceof SessionGuardError) return { status: err.status, body: err.body }
  if (typeof err !== 'object' || err === null) return undefined
  const candidate = err as { status?: unknown; body?: unknown }
  if (
    typeof candidate.status === 'number' &&
    Number.isInteger(candidate.status) &&
    candidate.status >= 400 &&
    candidate.status <= 599 &&
    isErrorResponse(candidate.body)
  )
    return { status: candidate.status, body: candidate.body }
  return fromBodyParser(err as BodyParserError)
}

/**
 * The accepted session id of a guarded request, as a plain `string`. Throws if the guard did not
 * run for this route, which is a wiring bug rather than a client error (your error handler answers 500).
 *
 * @example
 * app.post('/infer', sessionGuard(), (req, res) => res.json({ session_id: requireSessionId(req) }))
 */
export function requireSessionId(req: Request): string {
  if (req.sessionId === undefined)
    throw new Error('requireSessionId: sessionGuard() did not run for this route')
  return req.sessionId
}

// What every adapter entry re-exports, so one import serves a framework's users.
export * from '../adapter-exports.js'
