/** @jsxImportSource hono/jsx */
import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { LogCorruptError } from '@care/event-log'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, Hono, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { Child } from 'hono/jsx'
import type { AuditSource } from '../audit/audit-source.js'
import { runExport } from '../audit/export.js'
import { parseExportFilters, SESSION_ID_PATTERN } from '../audit/export-filters.js'
import { createPseudonymizer, loadPseudonymKey, type Pseudonymizer } from '../audit/pseudonymize.js'
import { mergeTimeline, readWorkerRecords, WorkerLogError } from '../audit/timeline.js'
import type { Role } from '../config.js'
import { sendError } from '../http/errors.js'
import type { SessionManagerEnv } from '../http/http-env.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { LOG_INTEGRITY } from '../store/file-event-store.js'
import { type ReviewCatalog, rowOfEvents, type SessionQuery } from './catalog.js'
import {
  type IntegrityReport,
  MessagePage,
  REVIEW_BASE,
  SEARCH_END_REASONS,
  type SearchForm,
  SearchPage,
  SessionPage,
  SignInPage,
  STYLESHEET_PATH,
} from './pages.js'
import { checkReviewToken, FailedSignIns, ReviewSignIns } from './sign-in.js'
import { REVIEW_CSS } from './stylesheet.js'
import { knownZone } from './time-format.js'

/**
 * What the review page needs: where it reads, who may sign in, and the worker logs it merges.
 *
 * @example
 * registerReviewRoutes(app, { catalog: () => backend?.review, audit: () => backend?.audit, tokens, reviewerTokens, workerLogs: [] })
 */
export interface ReviewRouteOptions {
  /** The read port; undefined while the store is recovering (pages answer 503 meanwhile). */
  catalog: () => ReviewCatalog | undefined
  /** Where the export of a session reads (the same source as GET /export). */
  audit: () => AuditSource | undefined
  /** The API's tokens: auditor tokens may sign in, caller-only tokens are refused. */
  tokens: ReadonlyMap<string, ReadonlySet<Role>>
  /** Digests of `CARE_REVIEWER_TOKENS`. */
  reviewerTokens: ReadonlySet<string>
  /** Worker logs merged into a session's timeline (`care-sessions timeline --with`). */
  workerLogs: readonly string[]
  /** Key file of the pseudonymised export; without it a random key per process. */
  pseudonymKeyFile?: string
  now?: () => number
  /** Failed sign-ins allowed per client and minute (default 5). */
  attemptsPerMinute?: number
  logger: { error(o: object, m: string): void; info?(o: object, m: string): void }
}

const SIGN_IN_COOKIE = 'care_review'
const ZONE_COOKIE = 'care_review_zone'
const IDLE_MS = 30 * 60_000
const MAX_SIGN_IN_MS = 8 * 3_600_000
const PAGE_SIZE = 25
const FORM_LIMIT_BYTES = 4096
const USER_ID = /^[\x21-\x7E]{1,128}$/
const SESSION_ID = new RegExp(SESSION_ID_PATTERN)
const DATE = /^\d{4}-\d{2}-\d{2}$/
const DAY_MS = 86_400_000
/** A path under the review page to come back to after a form (never another origin: no open redirect). */
const SAFE_BACK = /^\/review\/[A-Za-z0-9/_.~\-?=&%+]*$/

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * Serves the caregiver review page under `/review`: sign-in with a reviewer token (form, HttpOnly
 * SameSite=Strict cookie naming an opaque server-side sign-in), session search, a session's merged
 * timeline and its export. Server-rendered HTML without client script; every POST must come from this
 * origin; failed sign-ins are rate-limited per client; every response carries a strict CSP and
 * `Cache-Control: no-store`.
 *
 * @example
 * registerReviewRoutes(app, { catalog: () => backend?.review, audit: () => backend?.audit, tokens: config.tokens,
 *   reviewerTokens: config.reviewerTokens, workerLogs: config.reviewWorkerLogs, logger })
 */
export function registerReviewRoutes(app: Hono<SessionManagerEnv>, options: ReviewRouteOptions): void {
  const now = options.now ?? Date.now
  const signIns = new ReviewSignIns({ idleMs: IDLE_MS, maxMs: MAX_SIGN_IN_MS, max: 1000 })
  const failures = new FailedSignIns({
    attempts: options.attemptsPerMinute ?? 5,
    windowMs: 60_000,
    maxClients: 10_000,
  })
  const configured =
    options.reviewerTokens.size > 0 || [...options.tokens.values()].some((r) => r.has('auditor'))
  let pseudonymizer: Promise<Pseudonymizer> | undefined
  const pseudonymizerOf = () => {
    pseudonymizer ??= (
      options.pseudonymKeyFile ? loadPseudonymKey(options.pseudonymKeyFile) : Promise.resolve(randomBytes(32))
    ).then(createPseudonymizer)
    return pseudonymizer
  }

  const headers: MiddlewareHandler<SessionManagerEnv> = async function reviewHeaders(c, next) {
    await next()
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    c.header('Cache-Control', 'no-store')
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('X-Frame-Options', 'DENY')
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts, which the origin check refuses.
    c.header('Referrer-Policy', 'same-origin')
    c.header('Cross-Origin-Opener-Policy', 'same-origin')
    c.header('Cross-Origin-Resource-Policy', 'same-origin')
    c.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=()')
  }
  const sameOrigin: MiddlewareHandler<SessionManagerEnv> = async function sameOrigin(c, next) {
    // SameSite=Strict keeps the cookie off cross-site requests; this refuses cross-site form posts outright.
    const origin = c.req.header('origin')
    const ok =
      origin !== undefined
        ? origin === new URL(c.req.url).origin
        : c.req.header('sec-fetch-site') === 'same-origin'
    if (!ok)
      return page(
        c,
        <MessagePage
          title="Refused"
          message="This form must be sent from the review page itself."
          signedIn={false}
        />,
        403,
      )
    const length = Number(c.req.header('content-length') ?? '0')
    if (length > FORM_LIMIT_BYTES)
      return page(
        c,
        <MessagePage title="Too large" message="That form is too large." signedIn={false} />,
        413,
      )
    await next()
  }
  const signedIn: MiddlewareHandler<SessionManagerEnv> = async function signedIn(c, next) {
    if (!signIns.touch(getCookie(c, SIGN_IN_COOKIE), now())) {
      // Unauthenticated: the sign-in page (a fixed path: nothing to redirect elsewhere).
      return c.redirect(`${REVIEW_BASE}/sign-in`, 303)
    }
    await next()
  }
  const zoneOf = (c: Context<SessionManagerEnv>) => knownZone(getCookie(c, ZONE_COOKIE))
  const here = (c: Context<SessionManagerEnv>) => {
    const url = new URL(c.req.url)
    return `${url.pathname}${url.search}`
  }

  app.use(REVIEW_BASE, headers)
  app.use(`${REVIEW_BASE}/*`, headers)
  app.get(REVIEW_BASE, (c) => c.redirect(`${REVIEW_BASE}/sessions`, 303))
  app.get(STYLESHEET_PATH, (c) => c.body(REVIEW_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8' }))

  app.get(`${REVIEW_BASE}/sign-in`, (c) => {
    if (signIns.touch(getCookie(c, SIGN_IN_COOKIE), now())) return c.redirect(`${REVIEW_BASE}/sessions`, 303)
    return page(c, <SignInPage configured={configured} />)
  })
  app.post(`${REVIEW_BASE}/sign-in`, sameOrigin, async (c) => {
    const client = clientOf(c)
    const wait = failures.retryAfter(client, now())
    if (wait > 0) {
      c.header('Retry-After', String(wait))
      return page(
        c,
        <SignInPage
          configured={configured}
          message={`Too many failed sign-ins from here. Try again in ${wait} seconds.`}
        />,
        429,
      )
    }
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>)
    const token = typeof form.token === 'string' ? form.token.trim() : ''
    const verdict = checkReviewToken(options.tokens, options.reviewerTokens, token)
    if (verdict !== 'reviewer') {
      failures.fail(client, now())
      // Never the token itself in the log: only what was wrong with it.
      options.logger.info?.({ client, verdict }, 'review sign-in refused')
      const message =
        verdict === 'caller'
          ? 'That is a caller token. Caller tokens write sessions and cannot open the review page; use a reviewer token.'
          : 'That token is not a reviewer token. Check it and try again.'
      return page(
        c,
        <SignInPage configured={configured} message={message} />,
        verdict === 'caller' ? 403 : 401,
      )
    }
    const id = signIns.create(now())
    setCookie(c, SIGN_IN_COOKIE, id, {
      path: REVIEW_BASE,
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: MAX_SIGN_IN_MS / 1000,
    })
    return c.redirect(`${REVIEW_BASE}/sessions`, 303)
  })

  app.post(`${REVIEW_BASE}/sign-out`, sameOrigin, (c) => {
    signIns.delete(getCookie(c, SIGN_IN_COOKIE))
    deleteCookie(c, SIGN_IN_COOKIE, { path: REVIEW_BASE })
    return page(c, <SignInPage configured={configured} message="You are signed out." />)
  })

  app.post(`${REVIEW_BASE}/time-zone`, sameOrigin, signedIn, async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>)
    const zone = knownZone(typeof form.zone === 'string' ? form.zone : undefined)
    setCookie(c, ZONE_COOKIE, zone, {
      path: REVIEW_BASE,
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: 365 * 86_400,
    })
    const back =
      typeof form.back === 'string' && SAFE_BACK.test(form.back) && !form.back.includes('//')
        ? form.back
        : `${REVIEW_BASE}/sessions`
    return c.redirect(back, 303)
  })

  app.get(`${REVIEW_BASE}/sessions`, signedIn, async (c) => {
    const zone = zoneOf(c)
    const q = (name: string) => (c.req.query(name) ?? '').trim()
    const form: SearchForm = {
      user_id: q('user_id'),
      session_id: q('session_id'),
      from: q('from'),
      to: q('to'),
      end_reason: q('end_reason'),
    }
    const parsed = searchQuery(form, q('cursor'))
    if (typeof parsed === 'string') {
      return page(
        c,
        <SearchPage zone={zone} form={form} searched rows={[]} error={parsed} here={here(c)} />,
        400,
      )
    }
    const catalog = options.catalog()
    if (!catalog) return notReady(c, zone)
    const result = await readOrExplain(c, zone, () => catalog.findSessions(parsed))
    if (result instanceof Response) return result
    let olderHref: string | undefined
    if (result.nextCursor !== undefined) {
      const params = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== ''))
      params.set('cursor', result.nextCursor)
      olderHref = `${REVIEW_BASE}/sessions?${params}`
    }
    return page(
      c,
      <SearchPage zone={zone} form={form} searched rows={result.rows} olderHref={olderHref} here={here(c)} />,
    )
  })

  app.get(`${REVIEW_BASE}/sessions/:session_id`, signedIn, async (c) => {
    const zone = zoneOf(c)
    const id = c.req.param('session_id')
    const catalog = options.catalog()
    if (!SESSION_ID.test(id)) return notFound(c, zone)
    if (!catalog) return notReady(c, zone)
    const events = await readOrExplain(c, zone, () => catalog.sessionEvents(id))
    if (events instanceof Response) return events
    const row = rowOfEvents(events)
    if (!row) return notFound(c, zone)
    const workerNotes: { file: string; note: string }[] = []
    const integrity: IntegrityReport = {
      lifecycle: `${events.length} lines shown; ${catalog.integrity}: intact`,
      workers: workerNotes,
    }
    const workerLogs: { file: string; records: Awaited<ReturnType<typeof readWorkerRecords>> }[] = []
    for (const file of options.workerLogs) {
      const info = await stat(file).catch(() => undefined)
      if (!info) {
        workerNotes.push({ file, note: 'not found, so not merged' })
        continue
      }
      try {
        const records = await readWorkerRecords(file, id)
        workerLogs.push({ file, records })
        workerNotes.push({
          file,
          note: info.isDirectory()
            ? `${records.length} records of this session; every line of the log was hash- and chain-checked: intact`
            : `${records.length} records of this session from a plain JSONL file, which carries no hashes (not checkable)`,
        })
      } catch (error) {
        if (!(error instanceof LogCorruptError || error instanceof WorkerLogError)) throw error
        options.logger.error({ err: error, file }, 'review: a worker log is damaged')
        workerNotes.push({
          file,
          note: `DAMAGED at ${error.file}:${error.line} (${error.reason}); its records are not shown`,
        })
      }
    }
    // The same merge as `care-sessions timeline --with`.
    const entries = mergeTimeline(events, workerLogs)
    return page(
      c,
      <SessionPage zone={zone} row={row} entries={entries} integrity={integrity} here={here(c)} />,
    )
  })

  app.get(`${REVIEW_BASE}/sessions/:session_id/export.jsonl`, signedIn, async (c) => {
    const zone = zoneOf(c)
    const id = c.req.param('session_id')
    const mode = c.req.query('pseudonymised') ?? '0'
    if (!SESSION_ID.test(id) || (mode !== '0' && mode !== '1')) return notFound(c, zone)
    const source = options.audit()
    if (!source) return notReady(c, zone)
    const filters = parseExportFilters({ session_id: id })
    if (!filters.ok) return notFound(c, zone)
    const chunks: Uint8Array[] = []
    const manifest = await readOrExplain(c, zone, async () =>
      runExport(source, filters.value, (chunk) => void chunks.push(chunk), {
        ...(mode === '1' ? { pseudonymizer: await pseudonymizerOf() } : {}),
      }),
    )
    if (manifest instanceof Response) return manifest
    chunks.push(Buffer.from(`${JSON.stringify({ manifest })}\n`))
    const name = `session-${id}${mode === '1' ? '-pseudonymised' : ''}.jsonl`
    return c.body(Buffer.concat(chunks), 200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Content-Disposition': `attachment; filename="${name}"`,
    })
  })

  // Registered last: any other /review path. A browser (Accept naming text/html) gets the review's own
  // HTML 404 page, as every error of the review page is; other clients the JSON `not_found`.
  app.all(`${REVIEW_BASE}/*`, (c) => {
    if (!acceptsHtml(c.req.header('accept'))) return sendError(c, 'not_found')
    const signedInNow = signIns.touch(getCookie(c, SIGN_IN_COOKIE), now())
    return page(
      c,
      <MessagePage
        title="Page not found"
        message="The review page has no page at this address."
        signedIn={signedInNow}
        zone={zoneOf(c)}
      />,
      404,
    )
  })

  async function readOrExplain<T>(
    c: Context<SessionManagerEnv>,
    zone: string,
    read: () => Promise<T>,
  ): Promise<T | Response> {
    try {
      return await read()
    } catch (error) {
      const damaged =
        (error instanceof StoreUnavailableError && error.code === LOG_INTEGRITY) ||
        error instanceof LogCorruptError
      if (!damaged && !(error instanceof StoreUnavailableError)) throw error
      options.logger.error({ err: error }, 'review: the store could not answer')
      const message = damaged
        ? `The session log is damaged: ${(error as Error).message}. Nothing from it is shown; run care-sessions verify.`
        : 'The store is unavailable right now; try again shortly.'
      return page(
        c,
        <MessagePage
          title={damaged ? 'Damaged log' : 'Store unavailable'}
          message={message}
          signedIn
          zone={zone}
        />,
        503,
      )
    }
  }
}

/** True when the Accept header asks for HTML (a browser navigating), so an error page is worth showing. */
function acceptsHtml(accept: string | undefined): boolean {
  return /(^|,)\s*(text\/html|application\/xhtml\+xml)\s*(;|,|$)/i.test(accept ?? '')
}

function page(
  c: Context<SessionManagerEnv>,
  body: Child,
  status: 200 | 400 | 401 | 403 | 404 | 413 | 429 | 503 = 200,
) {
  return c.html(`<!doctype html>${String(body)}`, status)
}

function notFound(c: Context<SessionManagerEnv>, zone: string) {
  return page(
    c,
    <MessagePage title="Session not found" message="No session has this id." signedIn zone={zone} />,
    404,
  )
}

function notReady(c: Context<SessionManagerEnv>, zone: string) {
  return page(
    c,
    <MessagePage
      title="Not ready"
      message="The service is still recovering its log; try again shortly."
      signedIn
      zone={zone}
    />,
    503,
  )
}

function clientOf(c: Context<SessionManagerEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown' // not behind @hono/node-server (tests calling app.request)
  }
}

/** The catalog query of a search form, or what is wrong with it. */
function searchQuery(form: SearchForm, cursor: string): SessionQuery | string {
  const query: SessionQuery = { limit: PAGE_SIZE }
  if (form.user_id !== '') {
    if (!USER_ID.test(form.user_id)) return 'A user id is 1 to 128 visible characters without spaces.'
    query.userId = form.user_id
  }
  if (form.session_id !== '') {
    if (!SESSION_ID.test(form.session_id))
      return 'A session id is 26 characters (a ULID, such as 01J9Z3K8M2Q4R5S6T7V8W9X0YZ).'
    query.sessionId = form.session_id
  }
  for (const name of ['from', 'to'] as const) {
    const value = form[name]
    if (value === '') continue
    const ms = DATE.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN
    if (!Number.isFinite(ms))
      return `The ${name === 'from' ? 'first' : 'last'} date must be a date (YYYY-MM-DD).`
    if (name === 'from') query.from = ms
    else query.to = ms + DAY_MS
  }
  if (query.from !== undefined && query.to !== undefined && query.from >= query.to)
    return 'The first date must not be after the last date.'
  if (form.end_reason !== '') {
    if (!(SEARCH_END_REASONS as readonly string[]).includes(form.end_reason))
      return `The end reason must be one of ${SEARCH_END_REASONS.join(', ')}.`
    query.endReason = form.end_reason
  }
  if (cursor !== '') {
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(cursor)) return 'That page link is not valid; search again.'
    query.cursor = cursor
  }
  return query
}
