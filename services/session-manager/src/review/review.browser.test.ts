import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postJson, requestBody } from '../test-support/records.js'
import {
  type SpawnedSessionManager,
  spawnSessionManager,
  waitReady,
} from '../test-support/spawn-session-manager.js'
import { axeViolations, openBrowser } from './test-support/browser.js'

const CALLER = 'caller-token-for-review-tests'
const REVIEWER = 'reviewer-token-for-review-tests'
const XSS_METADATA = '<script>alert("metadata")</script>'
const XSS_WORKER = '<img src=x onerror=alert("worker")>'
// The screenshots in docs/review.md are refreshed only on request (`CARE_UPDATE_SCREENSHOTS=1`): they embed
// times, so taking them into docs/ on every run would leave every checkout with changed files. Without it the
// same screenshots are still taken (the step is exercised), into a temporary directory.
const UPDATE_SCREENSHOTS = process.env.CARE_UPDATE_SCREENSHOTS === '1'
const DOCS_SCREENSHOTS = new URL('../../../../docs/review/', import.meta.url).pathname
let screenshots: string

function screenshotPath(name: string): string {
  return join(UPDATE_SCREENSHOTS ? DOCS_SCREENSHOTS : screenshots, name)
}

let dir: string
let service: SpawnedSessionManager
let browser: { context: BrowserContext; close(): Promise<void> }
let sessionId: string
const dialogs: string[] = []

async function call(path: string, body: Record<string, unknown>) {
  const answer = await postJson(`${service.url}${path}`, body, { authorization: `Bearer ${CALLER}` })
  expect(answer?.status, JSON.stringify(answer?.body)).toBeLessThan(300)
  return answer!.body
}

/** A signed-out page that records every dialog (an XSS payload that ran would open one). */
async function newPage(): Promise<Page> {
  await browser.context.clearCookies() // each test signs in itself
  const page = await browser.context.newPage()
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message())
    void dialog.dismiss()
  })
  return page
}

async function expectAccessible(page: Page, screenshot?: string) {
  expect(await axeViolations(page)).toEqual([])
  if (screenshot) await page.screenshot({ path: screenshotPath(screenshot), fullPage: true })
}

/** Presses Tab until the focused element matches `selector` (bounded), as a keyboard-only user would. */
async function tabTo(page: Page, selector: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab')
    if ((await page.locator(`${selector}:focus`).count()) === 1) {
      // Focus must be visible: an outline on the focused element.
      const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')
      expect(outline, `focus on ${selector} is visible`).not.toBe('none')
      return
    }
  }
  throw new Error(`Tab never reached ${selector}`)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'care-review-'))
  screenshots = join(dir, 'screenshots')
  mkdirSync(screenshots)
  const workerLog = join(dir, 'worker.jsonl')
  writeFileSync(workerLog, '')
  service = await spawnSessionManager({
    CARE_DATA_DIR: join(dir, 'data'),
    CARE_CALLER_TOKENS: CALLER,
    CARE_REVIEWER_TOKENS: REVIEWER,
    CARE_REVIEW_WORKER_LOGS: workerLog,
  })
  await waitReady(service.url)
  // Another user's session first, so the search by user has something to leave out.
  await call('/sessions.start', requestBody({ user_id: 'user-other' }))
  const t0 = Date.now() - 60_000
  const at = (ms: number) => new Date(t0 + ms).toISOString()
  const started = await call(
    '/sessions.start',
    requestBody({ user_id: 'user-review', timestamp: at(0), metadata: { note: XSS_METADATA } }),
  )
  sessionId = started.session_id as string
  // The service stamps events with its own clock: the worker records below sit 10 and 15 ms after the
  // start, so the touch must come later than that for the timeline order the test expects.
  await new Promise((resolve) => setTimeout(resolve, 50))
  await call(
    '/sessions.touch',
    requestBody({ user_id: 'user-review', session_id: sessionId, timestamp: at(20_000) }),
  )
  await call(
    '/sessions.end',
    requestBody({ user_id: 'user-review', session_id: sessionId, timestamp: at(40_000) }),
  )
  const started_at = Date.parse(started.timestamp as string)
  const worker = (ms: number, label: string) =>
    JSON.stringify({
      session_id: sessionId,
      user_id: 'user-review',
      timestamp: new Date(started_at + ms).toISOString(),
      source: 'sample_worker',
      origin: 'system',
      event: 'derived',
      output: { label },
    })
  writeFileSync(workerLog, `${worker(10, 'first-worker-record')}\n${worker(15, XSS_WORKER)}\n`)
  browser = await openBrowser()
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await service?.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
})

describe('the review page in a real browser', { timeout: 120_000 }, () => {
  it('signs in, finds the user, shows the merged timeline in order, exports, signs out; axe finds nothing', async () => {
    const page = await newPage()
    await page.goto(`${service.url}/review`)
    expect(new URL(page.url()).pathname).toBe('/review/sign-in')
    await expectAccessible(page, 'sign-in.png')

    await page.getByLabel('Reviewer token').fill(REVIEWER)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL('**/review/sessions')
    await expectAccessible(page)

    await page.getByLabel('User id').fill('user-review')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.waitForURL('**/review/sessions?**')
    const rows = page.locator('table tbody tr')
    expect(await rows.count()).toBe(1)
    expect(await rows.first().innerText()).toContain('explicit')
    await expectAccessible(page, 'search.png')

    await page.getByRole('link', { name: sessionId }).click()
    await page.waitForURL(`**/review/sessions/${sessionId}`)
    const events = await page.locator('table tbody tr td:nth-child(5)').allInnerTexts()
    expect(events).toEqual(['session.start', 'derived', 'derived', 'session.touch', 'session.end'])
    const kinds = await page.locator('table tbody tr td:nth-child(3)').allInnerTexts()
    expect(kinds).toEqual(['lifecycle', 'worker', 'worker', 'lifecycle', 'lifecycle'])
    expect(await page.getByText('intact').count()).toBeGreaterThan(0)
    await expectAccessible(page, 'session.png')

    const download = page.waitForEvent('download')
    await page.getByRole('link', { name: 'Download JSONL', exact: true }).click()
    const lines = readFileSync((await (await download).path())!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.slice(0, -1).map((l) => l.event)).toEqual(['session.start', 'session.touch', 'session.end'])
    expect(lines.at(-1).manifest.counts.events).toBe(3)
    const pseudonymised = page.waitForEvent('download')
    await page.getByRole('link', { name: 'Download pseudonymised JSONL' }).click()
    const pseud = readFileSync((await (await pseudonymised).path())!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(pseud[0].user_id).toMatch(/^pseud:/)
    expect(pseud.at(-1).manifest.pseudonymized.algorithm).toBe('HMAC-SHA256')

    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByText('You are signed out.').waitFor()
    await page.goto(`${service.url}/review/sessions/${sessionId}`)
    expect(new URL(page.url()).pathname).toBe('/review/sign-in')
    await page.close()
  })

  it('goes the same path with the keyboard only, focus always visible', async () => {
    const page = await newPage()
    await page.goto(`${service.url}/review/sign-in`)
    await page.keyboard.press('Tab')
    expect(await page.locator(':focus').textContent()).toBe('Skip to main content')
    await tabTo(page, '#token')
    await page.keyboard.type(REVIEWER)
    await page.keyboard.press('Enter')
    await page.waitForURL('**/review/sessions')
    await tabTo(page, '#user_id')
    await page.keyboard.type('user-review')
    await page.keyboard.press('Enter')
    await page.waitForURL('**/review/sessions?**')
    await tabTo(page, `a[href$="${sessionId}"]`)
    await page.keyboard.press('Enter')
    await page.waitForURL(`**/review/sessions/${sessionId}`)
    await tabTo(page, 'details > summary')
    await page.keyboard.press('Enter')
    expect(await page.locator('details[open]').count()).toBe(1)
    await tabTo(page, 'a[href$="pseudonymised=0"]')
    const download = page.waitForEvent('download')
    await page.keyboard.press('Enter')
    expect(readFileSync((await (await download).path())!, 'utf8')).toContain('"manifest"')
    await tabTo(page, 'form[action$="sign-out"] button')
    await page.keyboard.press('Enter')
    await page.getByText('You are signed out.').waitFor()
    await page.close()
  })

  it('shows XSS payloads in metadata and in a worker record as text, and no dialog opens', async () => {
    const page = await newPage()
    await page.goto(`${service.url}/review/sign-in`)
    await page.getByLabel('Reviewer token').fill(REVIEWER)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL('**/review/sessions')
    await page.goto(`${service.url}/review/sessions/${sessionId}`)
    for (const summary of await page.locator('details > summary').all()) await summary.click()
    const text = await page.locator('main').innerText()
    expect(text).toContain(XSS_METADATA.replaceAll('"', '\\"'))
    expect(text).toContain(XSS_WORKER.replaceAll('"', '\\"'))
    expect(await page.locator('main script, main img').count()).toBe(0)
    expect(dialogs).toEqual([])
    await page.close()
  })

  it('reflows at 320 px width (and so at 200 % and 400 % zoom) without horizontal page scrolling', async () => {
    const page = await newPage()
    await page.setViewportSize({ width: 320, height: 700 })
    await page.goto(`${service.url}/review/sign-in`)
    await page.getByLabel('Reviewer token').fill(REVIEWER)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL('**/review/sessions')
    for (const path of ['/review/sessions?user_id=user-review', `/review/sessions/${sessionId}`]) {
      await page.goto(`${service.url}${path}`)
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(320)
      await expectAccessible(page)
    }
    await page.screenshot({ path: screenshotPath('session-320px.png'), fullPage: true })
    await page.close()
  })

  it('refuses a caller token with a clear message', async () => {
    const page = await newPage()
    await page.goto(`${service.url}/review/sign-in`)
    await page.getByLabel('Reviewer token').fill(CALLER)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toContain('caller token')
    expect(new URL(page.url()).pathname).toBe('/review/sign-in')
    await expectAccessible(page)
    await page.goto(`${service.url}/review/sessions`)
    expect(new URL(page.url()).pathname).toBe('/review/sign-in')
    await page.close()
  })
})

describe('the review page over HTTP', () => {
  const signIn = (token: string, origin = service.url) =>
    fetch(`${service.url}/review/sign-in`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
      redirect: 'manual',
    })

  it('sends a strict CSP, no-store and the other security headers on every page', async () => {
    const res = await fetch(`${service.url}/review/sign-in`)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'")
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline')
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('refuses a sign-in posted from another origin', async () => {
    const res = await signIn(REVIEWER, 'http://evil.example')
    expect(res.status).toBe(403)
    expect(res.headers.get('set-cookie')).toBeNull()
  })

  it('sets an HttpOnly SameSite=Strict cookie and never redirects off the review page', async () => {
    const res = await signIn(REVIEWER)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/review/sessions')
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/)
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!
    const zone = await fetch(`${service.url}/review/time-zone`, {
      method: 'POST',
      headers: { origin: service.url, cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ zone: 'Europe/Berlin', back: '//evil.example/x' }),
      redirect: 'manual',
    })
    expect(zone.headers.get('location')).toBe('/review/sessions')
  })

  it('limits failed sign-ins per client: 429 with Retry-After and a clear message', async () => {
    let res: Response | undefined
    for (let i = 0; i < 6; i++) res = await signIn(`wrong-token-number-${i}`)
    expect(res!.status).toBe(429)
    expect(Number(res!.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await res!.text()).toContain('Too many failed sign-ins')
    // Even the right token waits until the window has passed.
    expect((await signIn(REVIEWER)).status).toBe(429)
    // No token in the service's log.
    expect(service.lines.join('\n')).not.toContain('wrong-token-number')
    expect(service.lines.join('\n')).not.toContain(REVIEWER)
  })
})
