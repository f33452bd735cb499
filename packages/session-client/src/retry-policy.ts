/**
 * How a {@link SessionClient} retries a request that got no answer, a 503 or a 429: the same
 * body (same `record_id`) again, after `Retry-After` when the service sent one, otherwise after an
 * exponential backoff with full jitter, at most `maxAttempts` times and within the call's timeout.
 *
 * @example
 * new SessionClient({ baseUrl, source: 'ui', retry: { maxAttempts: 8, maxDelayMs: 4_000 } })
 */
export interface RetryPolicy {
  /** Requests in total, the first included (default 6; 1 disables retries). */
  maxAttempts?: number
  /** Backoff before the second attempt, doubled each time (default 200 ms). */
  baseDelayMs?: number
  /** Longest backoff, and longest `Retry-After` honoured (default 5 000 ms). */
  maxDelayMs?: number
}

/** The policy with its defaults filled in. */
export interface ResolvedRetryPolicy {
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export function resolveRetryPolicy(policy: RetryPolicy | false | undefined): ResolvedRetryPolicy {
  if (policy === false) return { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 }
  const maxAttempts = Math.max(1, Math.floor(policy?.maxAttempts ?? 6))
  const baseDelayMs = Math.max(0, policy?.baseDelayMs ?? 200)
  const maxDelayMs = Math.max(baseDelayMs, policy?.maxDelayMs ?? 5_000)
  return { maxAttempts, baseDelayMs, maxDelayMs }
}

/** Statuses whose request was not acknowledged and may be sent again unchanged. */
export function isRetryableStatus(status: number): boolean {
  return status === 503 || status === 429
}

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1). `Retry-After`
 * (seconds or an HTTP date) wins over the backoff; both are capped at `maxDelayMs`.
 */
export function retryDelayMs(
  policy: ResolvedRetryPolicy,
  attempt: number,
  retryAfter: string | null,
  now: number = Date.now(),
  random: () => number = Math.random,
): number {
  const asked = parseRetryAfter(retryAfter, now)
  if (asked !== undefined) return Math.min(asked, policy.maxDelayMs)
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** `Retry-After` in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
