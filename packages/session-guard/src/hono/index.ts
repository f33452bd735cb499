import { type ErrorResponse, errorResponse } from '@care/schemas'
import type { Context, Env, ErrorHandler, Handler, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { BlankInput, HandlerResponse, Input } from 'hono/types'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { recordSessionOnActiveSpan } from '../active-span.js'
import {
  classifyContentType,
  parseGuardedBody,
  tooLarge,
  unsupportedCharset,
  unsupportedEncoding,
} from '../json-body.js'
import { OVER_LIMIT, readUnreadBody, takeArrivedBody, unreadNodeRequest } from '../node/request-body.js'
import {
  ALL_SESSION_ID_SOURCES,
  DEFAULT_MAX_BODY_BYTES,
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

/**
 * The context variables the Hono guard sets. They are typed through the middleware's own `Env`
 * (no global `ContextVariableMap` augmentation): `c.get('sessionId')` is a `string` in handlers
 * behind the guard (route middleware, or `app.use(guard)` chained) and in apps declared with these
 * Variables, and not typed at all elsewhere.
 *
 * @example
 * const app = new Hono<{ Variables: SessionGuardVariables }>()
 * app.use(sessionGuard())
 * app.get('/x', (c) => c.text(c.get('sessionId')))
 */
export type SessionGuardVariables = {
  /** The accepted `session_id` (a ULID). */
  sessionId: string
}

/**
 * The `HTTPException` the Hono guard throws: `getResponse()` is the shared JSON error body with its
 * status, and `body` is that body as an object, so an app's `onError` can pass it on or reshape it.
 *
 * @example
 * app.onError((err, c) => {
 *   if (err instanceof SessionGuardException) return c.json({ ...err.body, hint: 'start a session first' }, err.status)
 *   return c.json({ error: 'internal_error', message: 'Unexpected error.' }, 500)
 * })
 */
export class SessionGuardException extends HTTPException {
  readonly body: ErrorResponse

  constructor(rejection: GuardRejection) {
    const res = new Response(JSON.stringify(rejection.body), {
      status: rejection.status,
      headers: { 'content-type': 'application/json' },
    })
    super(rejection.status as ContentfulStatusCode, { res, message: rejection.body.message })
    this.name = 'SessionGuardException'
    this.body = rejection.body
  }
}

/**
 * Reads the request's JSON body in a handler behind the guard, answering a missing or unparsable
 * body with the shared JSON error (400 `malformed_json`, or 415 for a compressed or non-UTF-8 body)
 * instead of the plain-text 500 a bare `c.req.json()` ends in. The guard lets header-only requests
 * through (the id came from the header), so a handler that needs a body must say so.
 *
 * @example
 * app.post('/sessions.touch', sessionGuard(), async (c) => {
 *   const body = await requireJsonBody(c) // 400 malformed_json when absent
 *   return c.json({ session_id: c.get('sessionId'), body })
 * })
 */
export async function requireJsonBody(c: Context): Promise<unknown> {
  const kind = classifyContentType(c.req.header('content-type'))
  if (kind === 'json-unsupported-charset') throw new SessionGuardException(unsupportedCharset())
  const encoded = unsupportedEncoding(c.req.header('content-encoding'))
  if (encoded) throw new SessionGuardException(encoded)
  let text: string
  try {
    text = await c.req.text()
  } catch {
    throw new SessionGuardException(rejectWith('malformed_json', 'The request body could not be read.'))
  }
  const parsed = parseGuardedBody(text)
  if (!parsed.ok) throw new SessionGuardException(parsed.rejection)
  if (parsed.value === undefined)
    throw new SessionGuardException(rejectWith('malformed_json', 'A JSON request body is required.'))
  return parsed.value
}

/**
 * An `app.onError` handler that keeps every error in the shared JSON shape: guard rejections and
 * `requireJsonBody` errors as they are, other `HTTPException`s with their own response, anything
 * else as 500 `internal_error` (reported to `onUnexpected`, never shown to the client).
 *
 * @example
 * app.onError(sessionErrorHandler({ onUnexpected: (err, c) => logger.error({ err, path: c.req.path }) }))
 */
export function sessionErrorHandler(
  options: { onUnexpected?: (err: Error, c: Context) => void } = {},
): ErrorHandler {
  return function renderSessionError(err, c) {
    if (err instanceof HTTPException) return err.getResponse()
    options.onUnexpected?.(err, c)
    const { status, body } = errorResponse('internal_error')
    return c.json(body, status as ContentfulStatusCode)
  }
}

/** Options of the Hono guard; `verify` receives the Hono context. */
export type HonoSessionGuardOptions = SessionGuardOptions<Context>

/**
 * Hono middleware that lets a request through only when it carries one valid `session_id`
 * (header `x-session-id`, JSON body field or query parameter) and sets `c.get('sessionId')`;
 * otherwise it throws a {@link SessionGuardException} (400, or 404/409 from `verify`) and the
 * handler never runs. It reads a JSON body through Hono's body cache (capped at `maxBodyBytes`),
 * so the handler's own `c.req.json()` still works. Throws a `TypeError` at once for bad options.
 * The default form for app-wide use; {@link guarded} is the same guard as a route's one handler.
 *
 * @example
 * const app = new Hono()
 * app.use('/sessions.*', sessionGuard({ sources: ['header', 'body'] }))
 * app.post('/sessions.end', (c) => c.json({ session_id: c.get('sessionId') }))
 */
export function sessionGuard(
  options: HonoSessionGuardOptions = {},
): MiddlewareHandler<{ Variables: SessionGuardVariables }> {
  const guard = createGuard(options)
  // The middleware resolves to nothing: `next()` resolves to the Context, and Hono's compose makes a
  // middleware's truthy result the response when the handler behind it answered nothing.
  return function sessionGuardMiddleware(c, next) {
    return guard(c, () => next().then(toNothing))
  }
}

const toNothing = (): void => {}

/**
 * The Hono guard as a route's handler instead of a middleware in front of it: `guarded(handler)`
 * is ONE Hono handler that makes exactly the decision {@link sessionGuard} makes (same options,
 * same {@link SessionGuardException} rejections, same body handoff to `c.req.json()` and
 * {@link guardedJsonBody}) and then returns `handler`'s response. A route whose only handler is
 * this one keeps Hono's single-handler path (no middleware `compose`), which a middleware cannot;
 * use it on hot routes of apps with no other middleware in front, and `sessionGuard()` for
 * app-wide use. `c.get('sessionId')` is a `string` in `handler`. Throws a `TypeError` at once for
 * bad options.
 *
 * @example
 * const app = new Hono()
 * app.post(
 *   '/events',
 *   guarded(async (c) => c.json({ session_id: c.get('sessionId'), body: await c.req.json() }), {
 *     sources: ['header', 'body'],
 *   }),
 * )
 */
export function guarded<
  E extends Env = Env,
  P extends string = string,
  I extends Input = BlankInput,
  R extends HandlerResponse<unknown> = Response,
>(
  handler: Handler<E & { Variables: SessionGuardVariables }, P, I, R>,
  options: HonoSessionGuardOptions = {},
): Handler<E & { Variables: SessionGuardVariables }, P, I, R> {
  const guard = createGuard(options)
  // Typed as the handler's own result: Hono awaits whatever a handler returns, and the guard may
  // turn a synchronous response into a promise of it (a body still arriving, `verify`, a refusal).
  return function guardedHandler(c, next) {
    return guard(c as unknown as Context, () => handler(c, next)) as R
  }
}

/**
 * The guard's one decision, shared by both forms: checks the request and, when it is accepted,
 * sets `sessionId` and returns `proceed()` (the middleware's `next`, or the guarded handler);
 * a refusal is a rejected promise of a {@link SessionGuardException}, never a synchronous throw.
 * Not async: an accepted request costs no async frame of its own, and a body that
 * has arrived whole is taken and parsed synchronously; one still on its way is waited for on one
 * promise chain (read, parse, decide).
 */
function createGuard({
  sources = ALL_SESSION_ID_SOURCES,
  exemptPaths = [],
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  verify,
}: HonoSessionGuardOptions): <T>(c: Context, proceed: () => T) => T | Promise<Awaited<T>> {
  const config = resolveGuardConfig({ sources, exemptPaths, maxBodyBytes, verify })
  const limit = config.maxBodyBytes

  /** Decides on the id once the body (if any) is known and proceeds. */
  function admit<T>(
    c: Context,
    proceed: () => T,
    incoming: NodeIncoming | undefined,
    body: unknown,
  ): T | Promise<Awaited<T>> {
    const decided = decideFromValues(
      config.readHeader
        ? incoming
          ? joinedHeader(incoming.headers[SESSION_ID_HEADER])
          : c.req.header(SESSION_ID_HEADER)
        : undefined,
      config.readBody ? extractSessionIdFromBody(body) : undefined,
      config.readQuery ? extractSessionIdFromQuery(incoming ? incoming.url : c.req.url) : undefined,
    )
    if (typeof decided !== 'string') throw new SessionGuardException(rejectWith(decided.code))
    if (config.verify) return verifyThenProceed(config.verify, decided, c, proceed)
    c.set('sessionId', decided)
    recordSessionOnActiveSpan(decided)
    return proceed()
  }

  return function guard<T>(c: Context, proceed: () => T): T | Promise<Awaited<T>> {
    try {
      if (config.hasExemptions && config.isExempt(c.req.path)) return proceed()
      const incoming = nodeIncomingOf(c)
      // GET and HEAD carry no body; checking first also avoids touching c.req.raw.body, which makes
      // @hono/node-server build a full Request object.
      const method = c.req.method
      if (config.readBody && method !== 'GET' && method !== 'HEAD') {
        const body = readJsonBody(c, incoming, limit)
        if (body instanceof Promise)
          return body.then((read) => admit(c, proceed, incoming, read)) as Promise<Awaited<T>>
        return admit(c, proceed, incoming, body)
      }
      return admit(c, proceed, incoming, undefined)
    } catch (err) {
      // Callers (and Hono's single-handler path) get a rejected promise, never a synchronous throw.
      return Promise.reject(err)
    }
  }
}

async function verifyThenProceed<T>(
  verify: NonNullable<HonoSessionGuardOptions['verify']>,
  sessionId: string,
  c: Context,
  proceed: () => T,
): Promise<Awaited<T>> {
  const rejection = judgeVerifyResult(await verify(sessionId, c))
  if (rejection) throw new SessionGuardException(rejection)
  c.set('sessionId', sessionId)
  recordSessionOnActiveSpan(sessionId)
  return await proceed()
}

type NodeIncoming = { headers: Record<string, string | string[] | undefined>; url: string }

/**
 * On `@hono/node-server` the raw IncomingMessage is `c.env.incoming`. Reading the header and the
 * request target from it avoids materialising a Fetch `Headers` object and a full URL just for
 * the guard; on any other runtime the portable `c.req` path is used.
 */
function nodeIncomingOf(c: Context): NodeIncoming | undefined {
  const incoming = (c.env as { incoming?: { headers?: unknown; url?: unknown } } | undefined)?.incoming
  if (
    typeof incoming?.url !== 'string' ||
    typeof incoming.headers !== 'object' ||
    incoming.headers === null
  ) {
    return undefined
  }
  return incoming as NodeIncoming
}

/** A Node header value as Fetch reports it: a repeated header joined with `, `. */
function joinedHeader(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' || value === undefined ? value : value.join(', ')
}

/**
 * Reads and parses the JSON body, if any, leaving it in Hono's cache for the handler: the parsed
 * value at once (undefined when there is no JSON body) when no wait is needed, else a promise of
 * it. A parsed JSON value is never a promise, so `instanceof Promise` tells the two apart.
 */
function readJsonBody(c: Context, incoming: NodeIncoming | undefined, limit: number): unknown {
  const kind = classifyContentType(
    incoming ? joinedHeader(incoming.headers['content-type']) : c.req.header('content-type'),
  )
  if (kind === 'not-json') return undefined
  if (kind === 'json-unsupported-charset') throw new SessionGuardException(unsupportedCharset())
  const encoded = unsupportedEncoding(
    incoming ? joinedHeader(incoming.headers['content-encoding']) : c.req.header('content-encoding'),
  )
  if (encoded) throw new SessionGuardException(encoded)
  // Hono keeps body promises in `c.req.bodyCache` (typed as resolved values); every c.req.text() /
  // json() goes through it, which lets the handler read the body again after us. It is a public
  // field of HonoRequest but not a documented API, so it is feature-checked here and its behaviour
  // is pinned by tests (framework-behaviour.test.ts) against the versions in the peer range.
  // A guard earlier in the chain already parsed this body: the same value, not a second parse.
  const guarded = (c.req as unknown as GuardedHonoRequest)[GUARDED_BODY]
  if (guarded !== undefined) return guarded
  const cache = bodyCacheOf(c)
  if (cache?.json !== undefined) return parsedOrReject(cache.json)
  const unread = cache?.text === undefined ? unreadNodeRequest(c.env?.incoming) : undefined
  if (cache && unread) {
    // Under @hono/node-server: read Node's stream directly. Touching `raw.body` would build a Fetch
    // Request and web stream for it, which made a guarded POST several times slower than its route.
    const declared = Number(unread.headers['content-length'] ?? Number.NaN)
    if (declared > limit) throw new SessionGuardException(tooLarge(limit))
    const arrived = takeArrivedBody(unread, limit)
    if (arrived === OVER_LIMIT) throw new SessionGuardException(tooLarge(limit))
    if (arrived !== undefined) {
      // The whole body was already here (the common case): no listener, no promise, no await.
      cache.text = Promise.resolve(arrived)
      return parsedForHandler(c, arrived)
    }
    // One promise from the stream's end to the parsed value: the text reaches Hono's cache, already
    // resolved, only once it is known to be within the limit and the body has been read whole.
    return readUnreadBody(unread, limit).then((text) => parseNodeText(c, cache, text, limit), unreadable)
  }
  if (cache?.text === undefined) {
    const { raw } = c.req
    if (raw.body === null || raw.bodyUsed) return undefined
    const declared = Number(raw.headers.get('content-length') ?? Number.NaN)
    if (declared > limit) throw new SessionGuardException(tooLarge(limit))
    // A declared length is enforced by the HTTP parser; without one, count bytes as they arrive.
    if (Number.isNaN(declared) && cache) cache.text = readCapped(raw.body, limit)
  }
  return parseRead(c, c.req.text(), cache !== undefined, limit)
}

/** The body read straight from Node's stream: over the limit is 413, then the same parse as below. */
function parseNodeText(c: Context, cache: BodyCache, text: string | undefined, limit: number): unknown {
  if (text === undefined) throw new SessionGuardException(tooLarge(limit))
  cache.text = Promise.resolve(text)
  return parsedForHandler(c, text)
}

/** A body stream that failed (the client went away) is answered as an unreadable body. */
function unreadable(): never {
  throw new SessionGuardException(rejectWith('malformed_json', 'The request body could not be read.'))
}

/**
 * Awaits the body text, parses it once and hands the parsed value to the handler. Without a body
 * cache (a future Hono) the body was read whole: `limit` then still answers 413 over the limit.
 */
async function parseRead(
  c: Context,
  read: Promise<string>,
  cached: boolean,
  limit?: number,
): Promise<unknown> {
  let text: string
  try {
    text = await read
  } catch (err) {
    if (err instanceof SessionGuardException) throw err
    throw new SessionGuardException(rejectWith('malformed_json', 'The request body could not be read.'))
  }
  if (!cached && limit !== undefined && new TextEncoder().encode(text).byteLength > limit)
    throw new SessionGuardException(tooLarge(limit))
  return parsedForHandler(c, text)
}

/**
 * Parses the body text once (with the checks of every CARE service) and leaves the value for the
 * handler's `c.req.json()` and `guardedJsonBody(c)`; throws the guard's rejection when it is not
 * acceptable JSON.
 */
function parsedForHandler(c: Context, text: string): unknown {
  const parsed = parseGuardedBody(text)
  if (!parsed.ok) throw new SessionGuardException(parsed.rejection)
  if (parsed.value !== undefined) {
    // Parsed once: the handler gets this value from c.req.json() or guardedJsonBody(c). Hono 4.9+
    // re-parses the cached text on every json() (4.6–4.8 keep a `json` cache entry), so this
    // request's json() answers with the value instead: a plain own property and a method shared
    // by every request (no per-request closure or property descriptor).
    const req = c.req as unknown as GuardedHonoRequest
    req[GUARDED_BODY] = parsed.value
    req.json = guardedJson
  }
  return parsed.value
}

/** Where the guard leaves the body it parsed, on the request it parsed it for. */
const GUARDED_BODY: unique symbol = Symbol('care.sessionGuard.body')

type GuardedHonoRequest = { [GUARDED_BODY]?: unknown; json: () => Promise<unknown> }

/** `c.req.json()` of a request whose body the guard parsed: the same value, without parsing again. */
function guardedJson(this: GuardedHonoRequest): Promise<unknown> {
  return Promise.resolve(this[GUARDED_BODY])
}

/**
 * The JSON body the guard read and parsed for this request, with the checks of every CARE service
 * (`parseJsonBody`: no `__proto__`-style keys, bounded depth), so a route behind the guard never
 * parses its body twice; undefined when the guard did not parse one (no JSON body, a GET, or a
 * body an earlier middleware had already parsed). `c.req.json()` returns the same value.
 *
 * @example
 * app.post('/notes', sessionGuard(), async (c) => {
 *   const body = guardedJsonBody(c) ?? (await c.req.json())
 *   return c.json({ session_id: c.get('sessionId'), body })
 * })
 */
export function guardedJsonBody(c: Context): unknown {
  return (c.req as unknown as GuardedHonoRequest)[GUARDED_BODY]
}

type BodyCache = { text?: Promise<string>; json?: Promise<unknown> }

/** Hono's per-request body cache, when this Hono version has one (4.x does). */
function bodyCacheOf(c: Context): BodyCache | undefined {
  const cache: unknown = (c.req as { bodyCache?: unknown }).bodyCache
  return typeof cache === 'object' && cache !== null ? (cache as BodyCache) : undefined
}

async function parsedOrReject(json: Promise<unknown>): Promise<unknown> {
  try {
    return await json
  } catch {
    throw new SessionGuardException(rejectWith('malformed_json'))
  }
}

async function readCapped(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new SessionGuardException(tooLarge(limit))
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks, size).toString('utf8')
}

// What every adapter entry re-exports, so one import serves a framework's users.
export * from '../adapter-exports.js'
