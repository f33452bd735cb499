import { describe, expect, it } from 'vitest'
import { useInProcessSessionManager } from '../test-support/in-process-service.js'

const service = useInProcessSessionManager('review-routes-', {
  CARE_REVIEWER_TOKENS: 'reviewer-token-for-route-tests',
})

describe('unknown /review paths', () => {
  it("answer a browser with the review page's own HTML 404 page, with its headers", async () => {
    const res = await fetch(`${service.url}/review/zzz`, {
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    })
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('content-security-policy')).toBeTruthy()
    expect(res.headers.get('cache-control')).toBe('no-store')
    const html = await res.text()
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toMatch(/<html lang="[a-z]+"/)
    expect(html).toMatch(/<title>[^<]*Page not found/)
    expect(html).toContain('<h1>Page not found</h1>')
    expect(html).toContain('role="alert"')
    expect(html).toContain('href="/review/sessions"')
  })

  it('answer a non-browser client (no Accept, or JSON) with the JSON not_found error', async () => {
    const variants: Record<string, string>[] = [{}, { accept: 'application/json' }, { accept: '*/*' }]
    for (const headers of variants) {
      const res = await fetch(`${service.url}/review/zzz/deeper`, { headers })
      expect(res.status).toBe(404)
      expect(await res.json()).toMatchObject({ error: 'not_found' })
    }
  })

  it('leave the real review pages alone', async () => {
    const res = await fetch(`${service.url}/review/sign-in`, { headers: { accept: 'text/html' } })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('<form')
  })
})
