import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createServiceMetrics, eventLogCommitObserver, registerReadiness } from './index.js'

// promtool comes from Debian's `prometheus` package; tooling/scripts/ensure-promtool.mjs installs it
// before `pnpm test` (or says how to).
const RULES = fileURLToPath(new URL('../../../docs/alerts/care-alerts.rules.yml', import.meta.url))
const RULE_TESTS = fileURLToPath(new URL('../../../docs/alerts/care-alerts.test.yml', import.meta.url))

function promtool(...args: string[]): string {
  return execFileSync('promtool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

describe('the alerting starter kit (docs/alerts)', () => {
  it('passes `promtool check rules`', () => {
    expect(promtool('check', 'rules', RULES)).toContain('SUCCESS: 4 rules found')
  })

  it('fires as its `promtool test rules` cases expect', () => {
    expect(promtool('test', 'rules', RULE_TESTS)).toContain('SUCCESS')
  })

  it('uses only metric names the services export (besides the future scrub’s, which is documented)', async () => {
    const metrics = createServiceMetrics({ service: 'check', defaultMetrics: false })
    eventLogCommitObserver(metrics.registry)
    registerReadiness(metrics.registry, () => true)
    const exported = new Set(metrics.registry.getMetricsAsArray().map((m) => m.name))
    const used = new Set(
      [...readFileSync(RULES, 'utf8').matchAll(/\b(care_[a-z_]+?)(?:_bucket)?\b/g)].map((m) => m[1]!),
    )
    expect([...used].filter((name) => !exported.has(name))).toEqual(['care_scrub_failures_total'])
  })
})
