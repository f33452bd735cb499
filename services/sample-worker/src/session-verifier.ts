import type { VerifyResult } from '@care/session-guard'

/**
 * How the worker's `verify` hook reaches the session-manager, and how much it remembers.
 *
 * @example
 * const options: SessionVerifierOptions = { sessionManagerUrl: 'http://127.0.0.1:7400', token: process.env.SESSION_MANAGER_TOKEN }
 */
export interface SessionVerifierOptions {
  /** The session-manager's base URL, e.g. `http://127.0.0.1:7400`. */
  sessionManagerUrl: string
  /** A bearer token with the `auditor` role (`GET /sessions/{id}` needs it), when the manager has tokens. */
  token?: string
  /** Most sessions remembered at once; the least recently used is forgotten first. Default 10,000. */
  maxEntries?: number
  /** How long "open" and "not found" are believed before asking again. Default 5 s. */
  ttlMs?: number
  /** How long to wait for the session-manager. Default 2 s. */
  timeoutMs?: number
  fetchImpl?: typeof fetch
  now?: () => number
}

interface Remembered {
  result: Exclude<VerifyResult, true> | true
  until: number
}

/**
 * A `verify` hook for `sessionGuard({ verify })`: asks the session-manager (`GET /sessions/{id}`)
 * whether the session exists and is open, and remembers the answer in a bounded cache. An ended
 * session stays ended, so that answer is kept until evicted; "open" and "not found" for `ttlMs`
 * (and "open" never past the session's own `expires_at`). An unreachable session-manager answers
 * 503 `upstream_unavailable` instead of letting the request through.
 *
 * @example
 * const verify = createSessionVerifier({ sessionManagerUrl: 'http://127.0.0.1:7400', token })
 * app.post('/infer', sessionGuard({ verify }), handler)
 */
export function createSessionVerifier(
  options: SessionVerifierOptions,
): (sessionId: string) => Promise<VerifyResult> {
  const {
    sessionManagerUrl,
    token,
    maxEntries = 10_000,
    ttlMs = 5_000,
    timeoutMs = 2_000,
    fetchImpl = globalThis.fetch,
    now = Date.now,
  } = options
  const cache = new Map<string, Remembered>()
  const remember = (id: string, entry: Remembered) => {
    cache.delete(id)
    cache.set(id, entry)
    // A Map iterates in insertion order: the first key is the least recently used.
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string)
  }
  return async function verifySession(sessionId) {
    const known = cache.get(sessionId)
    if (known && known.until > now()) {
      remember(sessionId, known)
      return known.result
    }
    let res: Response
    try {
      res = await fetchImpl(`${sessionManagerUrl}/sessions/${encodeURIComponent(sessionId)}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch {
      return {
        code: 'upstream_unavailable',
        message: 'The session-manager did not answer the session check.',
      }
    }
    if (res.status === 404) {
      await res.body?.cancel()
      remember(sessionId, { result: 'session_not_found', until: now() + ttlMs })
      return 'session_not_found'
    }
    if (!res.ok) {
      await res.body?.cancel()
      return {
        code: 'upstream_unavailable',
        message: `The session-manager answered ${res.status} to the session check.`,
      }
    }
    const summary = (await res.json()) as { status?: string; end_reason?: string; expires_at?: string }
    if (summary.status === 'ended') {
      const result: VerifyResult = 'session_ended'
      remember(sessionId, { result, until: Number.POSITIVE_INFINITY })
      return result
    }
    const expires = summary.expires_at ? Date.parse(summary.expires_at) : Number.NaN
    const until = Math.min(now() + ttlMs, Number.isNaN(expires) ? Number.POSITIVE_INFINITY : expires)
    remember(sessionId, { result: true, until })
    return true
  }
}
