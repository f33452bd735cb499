import { randomBytes } from 'node:crypto'
import { type Role, tokenDigest } from '../config.js'

/**
 * What a review sign-in token turned out to be: a reviewer (may sign in), a caller-only token (refused:
 * callers write sessions, they do not review them), or unknown.
 *
 * @example
 * if (checkReviewToken(tokens, reviewers, token) === 'caller') return refuse('caller tokens cannot sign in')
 */
export type TokenVerdict = 'reviewer' | 'caller' | 'unknown'

/**
 * Decides whether `token` may sign in to the review page: tokens of the `reviewer` role
 * (`CARE_REVIEWER_TOKENS`) and of the `auditor` role (which already reads everything through the API) may;
 * a caller-only token may not. Compared by SHA-256 digest, never kept in clear.
 *
 * @example
 * checkReviewToken(config.tokens, config.reviewerTokens, 'dev-reviewer-token-0001') // 'reviewer'
 */
export function checkReviewToken(
  tokens: ReadonlyMap<string, ReadonlySet<Role>>,
  reviewerTokens: ReadonlySet<string>,
  token: string,
): TokenVerdict {
  if (token.length === 0 || token.length > 512) return 'unknown'
  const digest = tokenDigest(token)
  if (reviewerTokens.has(digest) || tokens.get(digest)?.has('auditor')) return 'reviewer'
  return tokens.get(digest)?.has('caller') ? 'caller' : 'unknown'
}

/**
 * One signed-in reviewer: the opaque id in the cookie maps to this, server-side.
 *
 * @example
 * const signedIn = sessions.get(cookieValue)
 */
export interface ReviewSignIn {
  /** Epoch ms after which the sign-in is void (idle expiry, slid on use, capped by `until`). */
  expiresAt: number
  /** Epoch ms at which the sign-in ends whatever the activity. */
  until: number
}

/**
 * The signed-in reviewers, in memory and bounded: at most `max` entries (the oldest sign-in is dropped
 * first), each expiring after `idleMs` without use and at the latest `maxMs` after sign-in. A restart
 * signs everyone out, which is the safe direction.
 *
 * @example
 * const sessions = new ReviewSignIns({ idleMs: 30 * 60_000, maxMs: 8 * 3_600_000, max: 1000 })
 * const id = sessions.create(Date.now())
 */
export class ReviewSignIns {
  private readonly entries = new Map<string, ReviewSignIn>()

  constructor(private readonly limits: { idleMs: number; maxMs: number; max: number }) {}

  /** A new sign-in; its id (256 random bits, base64url) goes in the cookie. */
  create(now: number): string {
    const id = randomBytes(32).toString('base64url')
    while (this.entries.size >= this.limits.max) {
      const oldest = this.entries.keys().next().value
      if (oldest === undefined) break
      this.entries.delete(oldest)
    }
    this.entries.set(id, { expiresAt: now + this.limits.idleMs, until: now + this.limits.maxMs })
    return id
  }

  /** Whether `id` is a live sign-in; using it slides its idle expiry. */
  touch(id: string | undefined, now: number): boolean {
    if (id === undefined) return false
    const entry = this.entries.get(id)
    if (!entry) return false
    if (now >= entry.expiresAt || now >= entry.until) {
      this.entries.delete(id)
      return false
    }
    entry.expiresAt = Math.min(now + this.limits.idleMs, entry.until)
    return true
  }

  delete(id: string | undefined): void {
    if (id !== undefined) this.entries.delete(id)
  }

  get size(): number {
    return this.entries.size
  }
}

/**
 * Failed sign-ins per client, bounded: at most `attempts` failures in a sliding `windowMs`, after which
 * `retryAfter` says how many seconds to wait. At most `maxClients` clients are tracked (the oldest is
 * forgotten first), so a flood of addresses cannot grow memory.
 *
 * @example
 * const limiter = new FailedSignIns({ attempts: 5, windowMs: 60_000, maxClients: 10_000 })
 * const wait = limiter.retryAfter(ip, Date.now()); if (wait) return tooMany(wait)
 */
export class FailedSignIns {
  private readonly clients = new Map<string, number[]>()

  constructor(private readonly limits: { attempts: number; windowMs: number; maxClients: number }) {}

  /** Seconds until `client` may try again, or 0 when it may now. */
  retryAfter(client: string, now: number): number {
    const recent = this.recent(client, now)
    if (recent.length < this.limits.attempts) return 0
    return Math.max(1, Math.ceil((recent[0]! + this.limits.windowMs - now) / 1000))
  }

  fail(client: string, now: number): void {
    const recent = this.recent(client, now)
    recent.push(now)
    this.clients.delete(client)
    while (this.clients.size >= this.limits.maxClients) {
      const oldest = this.clients.keys().next().value
      if (oldest === undefined) break
      this.clients.delete(oldest)
    }
    this.clients.set(client, recent.slice(-this.limits.attempts))
  }

  private recent(client: string, now: number): number[] {
    return (this.clients.get(client) ?? []).filter((t) => t > now - this.limits.windowMs)
  }
}
