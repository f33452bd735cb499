import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

/** Debian's Chromium (tooling/scripts/ensure-chromium.mjs installs it before `pnpm test`). */
export const CHROMIUM = process.env.CARE_CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The flags that keep the browser headless and off the network (besides the service under test). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/** WCAG 2.2 AA, as axe-core tags it. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']

/**
 * A fresh Chromium profile (its own --user-data-dir), headless. `bypassCSP` lets the test inject axe-core;
 * it also means the XSS tests prove escaping, not only the CSP.
 */
export async function openBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run node tooling/scripts/ensure-chromium.mjs (apt-get install chromium)`,
    )
  }
  const profile = mkdtempSync(join(tmpdir(), 'care-review-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    bypassCSP: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Violations of WCAG 2.2 AA that axe-core finds on the page as it is now, as `id: target` lines. */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE_SOURCE })
  // A string expression: this package's TypeScript has no DOM types, the page has them.
  const violations = await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(AXE_TAGS)} } }).then((result) =>
      result.violations.map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`,
  )
  return violations as string[]
}
