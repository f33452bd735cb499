/** @jsxImportSource hono/jsx */
import { raw } from 'hono/html'
import type { Child } from 'hono/jsx'
import type { TimelineEntry } from '../audit/timeline.js'
import type { SessionRow } from './catalog.js'
import { formatDuration, formatInstant, TIME_ZONES } from './time-format.js'

/** Where the review page lives and its assets. */
export const REVIEW_BASE = '/review'
export const STYLESHEET_PATH = `${REVIEW_BASE}/assets/review.css`

/** The end reasons a search may name. */
export const SEARCH_END_REASONS = ['explicit', 'idle_timeout', 'max_duration'] as const

function Layout(props: { title: string; zone?: string; signedIn: boolean; here?: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · CARE session review`}</title>
        <link rel="stylesheet" href={STYLESHEET_PATH} />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to main content
        </a>
        <header class="banner">
          <p class="brand">CARE session review</p>
          {props.signedIn ? (
            <nav aria-label="Review">
              <ul>
                <li>
                  <a href={`${REVIEW_BASE}/sessions`}>Find sessions</a>
                </li>
                <li>
                  <form method="post" action={`${REVIEW_BASE}/time-zone`} class="inline">
                    <label for="zone">Time zone</label>
                    <select id="zone" name="zone">
                      {TIME_ZONES.map((zone) => (
                        <option value={zone} selected={zone === props.zone}>
                          {zone}
                        </option>
                      ))}
                    </select>
                    <input type="hidden" name="back" value={props.here ?? `${REVIEW_BASE}/sessions`} />
                    <button type="submit">Show times in this zone</button>
                  </form>
                </li>
                <li>
                  <form method="post" action={`${REVIEW_BASE}/sign-out`} class="inline">
                    <button type="submit">Sign out</button>
                  </form>
                </li>
              </ul>
            </nav>
          ) : null}
        </header>
        <main id="main" tabindex={-1}>
          {props.children}
        </main>
        <footer>
          <p>
            A review tool for caregivers and clinicians, behind the reviewer role. It is not a “current
            session” lookup for workers.
          </p>
        </footer>
      </body>
    </html>
  )
}

/**
 * The sign-in page: one password field for the reviewer token (never put in a URL: the form posts it).
 *
 * @example
 * return c.html(<SignInPage message="That token is not a reviewer token." />, 401)
 */
export function SignInPage(props: { message?: string; configured: boolean }) {
  return (
    <Layout title="Sign in" signedIn={false}>
      <h1>Sign in to review sessions</h1>
      {props.message ? (
        <p class="error" role="alert" id="sign-in-error">
          {props.message}
        </p>
      ) : null}
      {props.configured ? null : (
        <p class="note">
          No reviewer tokens are configured: set CARE_REVIEWER_TOKENS (or CARE_AUDITOR_TOKENS) and restart.
        </p>
      )}
      <form method="post" action={`${REVIEW_BASE}/sign-in`} class="stack">
        <label for="token">Reviewer token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          maxlength={512}
          aria-describedby={props.message ? 'sign-in-error token-help' : 'token-help'}
        />
        <p id="token-help" class="help">
          A token of the reviewer (or auditor) role. Caller tokens cannot sign in.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  )
}

/** The search form's values as the reviewer typed them (re-shown on the results page). */
export interface SearchForm {
  user_id: string
  session_id: string
  from: string
  to: string
  end_reason: string
}

/**
 * The search page: the form and, once searched, one page of sessions newest first.
 *
 * @example
 * return c.html(<SearchPage zone="UTC" form={form} rows={page.rows} />)
 */
export function SearchPage(props: {
  zone: string
  form: SearchForm
  searched: boolean
  rows: readonly SessionRow[]
  error?: string
  olderHref?: string
  here: string
}) {
  const { form, zone } = props
  return (
    <Layout title="Find sessions" zone={zone} signedIn here={props.here}>
      <h1>Find sessions</h1>
      <form method="get" action={`${REVIEW_BASE}/sessions`} class="search" aria-describedby="search-help">
        <p id="search-help" class="help">
          Any combination of filters; results are newest first. Dates are in UTC, from the start of the first
          day to the end of the last.
        </p>
        <div class="field">
          <label for="user_id">User id</label>
          <input id="user_id" name="user_id" value={form.user_id} maxlength={128} autocomplete="off" />
        </div>
        <div class="field">
          <label for="session_id">Session id</label>
          <input
            id="session_id"
            name="session_id"
            value={form.session_id}
            maxlength={26}
            autocomplete="off"
          />
        </div>
        <div class="field">
          <label for="from">Started on or after (UTC date)</label>
          <input id="from" name="from" type="date" value={form.from} />
        </div>
        <div class="field">
          <label for="to">Started on or before (UTC date)</label>
          <input id="to" name="to" type="date" value={form.to} />
        </div>
        <div class="field">
          <label for="end_reason">End reason</label>
          <select id="end_reason" name="end_reason">
            <option value="" selected={form.end_reason === ''}>
              Any
            </option>
            {SEARCH_END_REASONS.map((reason) => (
              <option value={reason} selected={form.end_reason === reason}>
                {reason}
              </option>
            ))}
          </select>
        </div>
        <div class="field actions">
          <button type="submit">Search</button>
        </div>
      </form>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
      {props.searched && !props.error ? (
        <Results rows={props.rows} zone={zone} olderHref={props.olderHref} />
      ) : null}
    </Layout>
  )
}

function Results(props: { rows: readonly SessionRow[]; zone: string; olderHref?: string | undefined }) {
  if (props.rows.length === 0) {
    return (
      <section aria-labelledby="results">
        <h2 id="results">Sessions</h2>
        <p role="status">No sessions match.</p>
      </section>
    )
  }
  return (
    <section aria-labelledby="results">
      <h2 id="results">Sessions</h2>
      <p role="status">
        {props.rows.length} session{props.rows.length === 1 ? '' : 's'} on this page, newest first.
      </p>
      <section class="scroll" aria-label="Sessions table" tabindex={0}>
        <table>
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">User</th>
              <th scope="col">Start</th>
              <th scope="col">End</th>
              <th scope="col">Duration</th>
              <th scope="col">End reason</th>
              <th scope="col">Performer</th>
              <th scope="col">Events</th>
              <th scope="col">Open</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((row) => (
              <tr>
                <td>
                  <a href={`${REVIEW_BASE}/sessions/${row.session_id}`} class="mono">
                    {row.session_id}
                  </a>
                </td>
                <td class="mono">{row.user_id}</td>
                <td>
                  <time datetime={new Date(row.start).toISOString()}>
                    {formatInstant(row.start, props.zone)}
                  </time>
                </td>
                <td>
                  {row.end === undefined ? (
                    '—'
                  ) : (
                    <time datetime={new Date(row.end).toISOString()}>
                      {formatInstant(row.end, props.zone)}
                    </time>
                  )}
                </td>
                <td>{row.duration_ms === undefined ? '—' : formatDuration(row.duration_ms)}</td>
                <td>{row.end_reason ?? '—'}</td>
                <td class="mono">{row.performer}</td>
                <td>{row.event_count}</td>
                <td>{row.open ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {props.olderHref ? (
        <p>
          <a href={props.olderHref} rel="next">
            Older sessions
          </a>
        </p>
      ) : null}
    </section>
  )
}

/** What the session page says about the integrity of what it shows. */
export interface IntegrityReport {
  lifecycle: string
  workers: readonly { file: string; note: string }[]
}

const LANE_HEIGHT = 36
const AXIS_LEFT = 160
const AXIS_WIDTH = 800

function Swimlanes(props: { entries: readonly TimelineEntry[]; zone: string }) {
  const times = props.entries.map((e) => Date.parse(e.timestamp)).filter(Number.isFinite)
  if (times.length === 0) return null
  const first = Math.min(...times)
  const last = Math.max(...times)
  const span = Math.max(1, last - first)
  const lanes = [...new Set(props.entries.map((e) => e.source))]
  const height = lanes.length * LANE_HEIGHT + 40
  const x = (t: number) => AXIS_LEFT + ((t - first) / span) * AXIS_WIDTH
  return (
    <figure class="lanes">
      <svg
        viewBox={`0 0 ${AXIS_LEFT + AXIS_WIDTH + 20} ${height}`}
        role="img"
        aria-labelledby="lanes-title lanes-caption"
        focusable="false"
      >
        <title id="lanes-title">Time axis of the session, one lane per source</title>
        {lanes.map((lane, i) => (
          <g>
            <text x={8} y={i * LANE_HEIGHT + 24} class="lane-label">
              {lane.length > 18 ? `${lane.slice(0, 17)}…` : lane}
            </text>
            <line
              x1={AXIS_LEFT}
              x2={AXIS_LEFT + AXIS_WIDTH}
              y1={i * LANE_HEIGHT + 20}
              y2={i * LANE_HEIGHT + 20}
              class="lane-line"
            />
            {props.entries
              .filter((e) => e.source === lane && Number.isFinite(Date.parse(e.timestamp)))
              .map((e) => (
                <circle
                  cx={x(Date.parse(e.timestamp)).toFixed(1)}
                  cy={i * LANE_HEIGHT + 20}
                  r={6}
                  class={e.kind === 'lifecycle' ? 'dot-lifecycle' : 'dot-worker'}
                />
              ))}
          </g>
        ))}
        <text x={AXIS_LEFT} y={height - 8} class="axis-label">
          {formatInstant(first, props.zone)}
        </text>
        <text x={AXIS_LEFT + AXIS_WIDTH} y={height - 8} class="axis-label" text-anchor="end">
          {`+${formatDuration(span)}`}
        </text>
      </svg>
      <figcaption id="lanes-caption">
        Time axis, one lane per source ({lanes.join(', ')}): {props.entries.length} entries over{' '}
        {formatDuration(last - first)}. Empty stretches are idle periods. The table below lists every entry.
      </figcaption>
    </figure>
  )
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text or attribute value made safe for HTML (the only way a value enters the raw rows below). */
function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/**
 * The timeline table's rows as one HTML string: a session page may have thousands of entries, and building
 * a JSX node per cell costs several times more. Every value goes through `escapeHtml`.
 */
function timelineRows(entries: readonly TimelineEntry[], zone: string): string {
  let previous: number | undefined
  const rows: string[] = []
  for (const entry of entries) {
    const time = Date.parse(entry.timestamp)
    const known = Number.isFinite(time)
    const gap = previous === undefined || !known ? '—' : `+${formatDuration(time - previous)}`
    if (known) previous = time
    const origin = typeof entry.record.origin === 'string' ? entry.record.origin : '—'
    const performer = typeof entry.record.performer_id === 'string' ? entry.record.performer_id : '—'
    const when = known
      ? `<time datetime="${escapeHtml(entry.timestamp)}">${escapeHtml(formatInstant(time, zone))}</time>`
      : 'no time'
    rows.push(
      `<tr class="${entry.kind}"><td>${when}</td><td>${escapeHtml(gap)}</td><td>${entry.kind}</td>` +
        `<td class="mono">${escapeHtml(entry.source)}</td><td class="mono">${escapeHtml(entry.event)}</td>` +
        `<td>${escapeHtml(origin)}</td><td class="mono">${escapeHtml(performer)}</td>` +
        `<td><details><summary>${escapeHtml(where(entry))}</summary><pre>${escapeHtml(JSON.stringify(entry.record, null, 2))}</pre></details></td></tr>`,
    )
  }
  return rows.join('')
}

function where(entry: TimelineEntry): string {
  return 'seq' in entry.at ? `log seq ${entry.at.seq}` : `${entry.at.file.split('/').at(-1)}:${entry.at.line}`
}

/**
 * A session's page: summary, integrity, swimlanes, the merged timeline and the export links.
 *
 * @example
 * return c.html(<SessionPage zone="UTC" row={row} entries={merged} integrity={report} />)
 */
export function SessionPage(props: {
  zone: string
  row: SessionRow
  entries: readonly TimelineEntry[]
  integrity: IntegrityReport
  here: string
}) {
  const { row, zone, entries } = props
  const exportBase = `${REVIEW_BASE}/sessions/${row.session_id}/export.jsonl`
  return (
    <Layout title={`Session ${row.session_id}`} zone={zone} signedIn here={props.here}>
      <h1>
        Session <span class="mono">{row.session_id}</span>
      </h1>
      <dl class="summary">
        <dt>User</dt>
        <dd class="mono">{row.user_id}</dd>
        <dt>Start</dt>
        <dd>{formatInstant(row.start, zone)}</dd>
        <dt>End</dt>
        <dd>{row.end === undefined ? 'still open' : formatInstant(row.end, zone)}</dd>
        <dt>Duration</dt>
        <dd>{row.duration_ms === undefined ? '—' : formatDuration(row.duration_ms)}</dd>
        <dt>End reason</dt>
        <dd>{row.end_reason ?? '—'}</dd>
        <dt>Performer</dt>
        <dd class="mono">{row.performer}</dd>
        <dt>Lifecycle events</dt>
        <dd>{row.event_count}</dd>
      </dl>
      <section aria-labelledby="integrity">
        <h2 id="integrity">Integrity</h2>
        <ul>
          <li>Lifecycle events: {props.integrity.lifecycle}.</li>
          {props.integrity.workers.map((w) => (
            <li>
              Worker log <span class="mono">{w.file}</span>: {w.note}.
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="timeline">
        <h2 id="timeline">Timeline</h2>
        <Swimlanes entries={entries} zone={zone} />
        <section class="scroll" aria-label="Timeline table" tabindex={0}>
          <table>
            <caption>
              {entries.length} entries in chronological order (lifecycle events and worker records)
            </caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Since previous</th>
                <th scope="col">Kind</th>
                <th scope="col">Source</th>
                <th scope="col">Event</th>
                <th scope="col">Origin</th>
                <th scope="col">Performer</th>
                <th scope="col">Record</th>
              </tr>
            </thead>
            <tbody>{raw(timelineRows(entries, zone))}</tbody>
          </table>
        </section>
      </section>
      <section aria-labelledby="export">
        <h2 id="export">Export</h2>
        <p>
          This session's lifecycle events as JSONL, ending with the export manifest line (as GET /export and
          care-sessions export write it).
        </p>
        <ul>
          <li>
            <a href={`${exportBase}?pseudonymised=0`} download>
              Download JSONL
            </a>
          </li>
          <li>
            <a href={`${exportBase}?pseudonymised=1`} download>
              Download pseudonymised JSONL
            </a>{' '}
            (user and performer ids replaced by keyed pseudonyms)
          </li>
        </ul>
      </section>
    </Layout>
  )
}

/**
 * A page that only says something (not found, damaged log, bad input).
 *
 * @example
 * return c.html(<MessagePage title="Session not found" message="No session has this id." signedIn />, 404)
 */
export function MessagePage(props: { title: string; message: string; signedIn: boolean; zone?: string }) {
  return (
    <Layout title={props.title} signedIn={props.signedIn} zone={props.zone}>
      <h1>{props.title}</h1>
      <p role="alert">{props.message}</p>
      <p>
        <a href={`${REVIEW_BASE}/sessions`}>Back to the search</a>
      </p>
    </Layout>
  )
}
