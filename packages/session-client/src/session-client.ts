import type {
  ErrorResponse,
  SessionManagerEndInput,
  SessionManagerEndOutput,
  SessionManagerStartInput,
  SessionManagerStartOutput,
  SessionManagerTouchInput,
  SessionManagerTouchOutput,
  SessionSummary,
  SessionTimelinePage,
} from '@care/schemas'
import { newRecordId } from './record-id.js'
import {
  isRetryableStatus,
  type ResolvedRetryPolicy,
  type RetryPolicy,
  resolveRetryPolicy,
  retryDelayMs,
} from './retry-policy.js'
import { SessionClientError, type SessionClientErrorCode } from './session-client-error.js'

/** Fields the client fills in unless the caller gives them: `record_id` and `timestamp` are minted. */
type Minted = 'schema_version' | 'record_id' | 'timestamp' | 'source'
type Request<T> = Omit<T, Minted> &
  Partial<Pick<SessionManagerStartInput, 'record_id' | 'timestamp' | 'source'>>

/** What {@link SessionClient.start} needs: who the session is for and who acts. */
export type StartRequest = Request<SessionManagerStartInput>
/** What {@link SessionClient.touch} needs: the session and who acts. */
export type TouchRequest = Request<SessionManagerTouchInput>
/** What {@link SessionClient.end} needs: the session and who acts. */
export type EndRequest = Request<SessionManagerEndInput>

/** Per-call options: the caller's `AbortSignal` and a timeout for this call. */
export interface CallOptions {
  /** Aborts the call (and its retries); the call rejects with the signal's reason. */
  signal?: AbortSignal
  /** Time for the whole call, retries included (default: the client's `timeoutMs`). */
  timeoutMs?: number
}

/**
 * Options of a {@link SessionClient}.
 *
 * @example
 * const options: SessionClientOptions = { baseUrl: 'http://127.0.0.1:7400', source: 'ui', token: () => getToken() }
 */
export interface SessionClientOptions {
  /** The session-manager's base URL, e.g. `http://127.0.0.1:7400`. */
  baseUrl: string | URL
  /** `source` of the records this client writes (BaseSchema `source`, e.g. `ui`). */
  source: string
  /** Bearer token, or a function returning one (called for every request, so it may refresh). */
  token?: string | (() => string | Promise<string>)
  /** Time for one call, retries included (default 30 000 ms). */
  timeoutMs?: number
  /** Retry policy for network errors, 503 and 429; `false` sends every request once. */
  retry?: RetryPolicy | false
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: typeof fetch
  /** Clock for minted timestamps and record ids (default `() => new Date()`). */
  now?: () => Date
}

/**
 * A typed client for the CARE session-manager HTTP API that makes its idempotency design work:
 * every write gets a fresh `record_id` (ULID) and `timestamp` once, and when a request gets no
 * answer, a 503 or a 429, the **same body with the same `record_id`** is sent again (honouring
 * `Retry-After`, with bounded backoff), so a write the service did record is answered with its
 * original output instead of being recorded twice. Uses only `fetch`, `AbortSignal` and
 * `crypto.getRandomValues`: it runs in browsers and in Node 20+.
 *
 * @example
 * const sessions = new SessionClient({ baseUrl: 'http://127.0.0.1:7400', source: 'ui', token: 'caller-token' })
 * const started = await sessions.start({ user_id: 'user-42', origin: 'human', performer_id: 'caregiver-7' })
 * await sessions.touch({ session_id: started.session_id, user_id: 'user-42', origin: 'system' })
 * const ended = await sessions.end({ session_id: started.session_id, user_id: 'user-42', origin: 'system' })
 */
export class SessionClient {
  readonly #base: string
  readonly #source: string
  readonly #token: SessionClientOptions['token']
  readonly #timeoutMs: number
  readonly #retry: ResolvedRetryPolicy
  readonly #fetch: typeof fetch
  readonly #now: () => Date

  constructor(options: SessionClientOptions) {
    this.#base = String(options.baseUrl).replace(/\/+$/, '')
    this.#source = options.source
    this.#token = options.token
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#retry = resolveRetryPolicy(options.retry)
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.#now = options.now ?? (() => new Date())
  }

  /**
   * Opens a session (`POST /sessions.start`). A retry of a start the service already recorded
   * returns the original session, never a second one.
   *
   * @example
   * const { session_id } = await sessions.start({ user_id: 'user-42', origin: 'human', performer_id: 'caregiver-7' })
   */
  start(request: StartRequest, options?: CallOptions): Promise<SessionManagerStartOutput> {
    return this.#send<SessionManagerStartOutput>('POST', '/sessions.start', this.#record(request), options)
  }

  /**
   * Records activity in a session (`POST /sessions.touch`), pushing back its idle timeout.
   *
   * @example
   * await sessions.touch({ session_id, user_id: 'user-42', origin: 'system' })
   */
  touch(request: TouchRequest, options?: CallOptions): Promise<SessionManagerTouchOutput> {
    return this.#send<SessionManagerTouchOutput>('POST', '/sessions.touch', this.#record(request), options)
  }

  /**
   * Ends a session explicitly (`POST /sessions.end`).
   *
   * @example
   * const ended = await sessions.end({ session_id, user_id: 'user-42', origin: 'system' })
   */
  end(request: EndRequest, options?: CallOptions): Promise<SessionManagerEndOutput> {
    return this.#send<SessionManagerEndOutput>('POST', '/sessions.end', this.#record(request), options)
  }

  /**
   * The state of one session (`GET /sessions/{session_id}`, auditor role).
   *
   * @example
   * const { status, end_reason } = await sessions.getSession(session_id)
   */
  getSession(sessionId: string, options?: CallOptions): Promise<SessionSummary> {
    return this.#send<SessionSummary>('GET', `/sessions/${encodeURIComponent(sessionId)}`, undefined, options)
  }

  /**
   * One page of a session's events (`GET /sessions/{session_id}/timeline`, auditor role). Pass
   * the page's `next_cursor` back as `cursor` until it is `null`.
   *
   * @example
   * const page = await sessions.timeline(session_id, { limit: 100 })
   * const next = page.next_cursor === null ? undefined : await sessions.timeline(session_id, { cursor: page.next_cursor })
   */
  timeline(
    sessionId: string,
    page: { cursor?: string; limit?: number } = {},
    options?: CallOptions,
  ): Promise<SessionTimelinePage> {
    const query = new URLSearchParams()
    if (page.cursor !== undefined) query.set('cursor', page.cursor)
    if (page.limit !== undefined) query.set('limit', String(page.limit))
    const suffix = query.size > 0 ? `?${query}` : ''
    return this.#send<SessionTimelinePage>(
      'GET',
      `/sessions/${encodeURIComponent(sessionId)}/timeline${suffix}`,
      undefined,
      options,
    )
  }

  /** The full record: BaseSchema fields minted once, so every retry sends identical bytes. */
  #record<T extends object>(request: T & Partial<Pick<SessionManagerStartInput, Minted>>): string {
    const now = this.#now()
    return JSON.stringify({
      schema_version: '1.1',
      ...request,
      record_id: request.record_id ?? newRecordId(now.getTime()),
      timestamp: request.timestamp ?? now.toISOString(),
      source: request.source ?? this.#source,
    })
  }

  async #send<T>(method: 'GET' | 'POST', path: string, body: string | undefined, options: CallOptions = {}) {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const deadline = Date.now() + timeoutMs
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
    const fail = (err: unknown, attempts: number): never => {
      if (options.signal?.aborted) throw options.signal.reason
      if (timeout.aborted)
        throw new SessionClientError('timeout', `${method} ${path}: no answer within ${timeoutMs} ms`, {
          attempts,
          cause: err,
        })
      throw err
    }
    for (let attempt = 1; ; attempt++) {
      const headers = await this.#headers(body !== undefined)
      if (signal.aborted) return fail(signal.reason, attempt - 1)
      let response: Response
      try {
        response = await this.#fetch(`${this.#base}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal,
        })
      } catch (err) {
        if (signal.aborted) return fail(err, attempt)
        const error = new SessionClientError('network_error', `${method} ${path}: ${describe(err)}`, {
          attempts: attempt,
          cause: err,
        })
        await this.#pause(attempt, null, deadline, signal, error)
        continue
      }
      const parsed = await readJson(response).catch((err: unknown) => fail(err, attempt))
      if (response.ok) {
        if (parsed.ok) return parsed.value as T
        throw new SessionClientError(
          'unexpected_response',
          `${method} ${path}: ${response.status} without JSON`,
          {
            status: response.status,
            attempts: attempt,
          },
        )
      }
      const errorBody = parsed.ok && isErrorResponse(parsed.value) ? parsed.value : undefined
      const error = new SessionClientError(
        (errorBody?.error as SessionClientErrorCode | undefined) ?? 'unexpected_response',
        `${method} ${path}: ${response.status} ${errorBody ? `${errorBody.error}: ${errorBody.message}` : 'without the shared error body'}`,
        { status: response.status, attempts: attempt, ...(errorBody ? { body: errorBody } : {}) },
      )
      if (!isRetryableStatus(response.status)) throw error
      await this.#pause(attempt, response.headers.get('retry-after'), deadline, signal, error)
    }
  }

  /** Waits before the next attempt, or throws `error` when no attempt or time is left. */
  async #pause(
    attempt: number,
    retryAfter: string | null,
    deadline: number,
    signal: AbortSignal,
    error: SessionClientError,
  ): Promise<void> {
    if (attempt >= this.#retry.maxAttempts) throw error
    const delay = retryDelayMs(this.#retry, attempt, retryAfter)
    if (Date.now() + delay >= deadline) throw error
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer)
        reject(signalFailure(signal, error))
      }
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }, delay)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  async #headers(hasBody: boolean): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (hasBody) headers['content-type'] = 'application/json'
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token
    if (token) headers.authorization = `Bearer ${token}`
    return headers
  }
}

function signalFailure(signal: AbortSignal, last: SessionClientError): unknown {
  const reason: unknown = signal.reason
  if (reason instanceof DOMException && reason.name === 'TimeoutError') {
    return new SessionClientError('timeout', `${last.message} (then the call's time ran out)`, {
      attempts: last.attempts,
      cause: last,
      ...(last.status === undefined ? {} : { status: last.status }),
    })
  }
  return reason
}

async function readJson(response: Response): Promise<{ ok: true; value: unknown } | { ok: false }> {
  const text = await response.text()
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

function isErrorResponse(value: unknown): value is ErrorResponse {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { error?: unknown }).error === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  )
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : ''
    return `${err.message}${cause}`
  }
  return String(err)
}
