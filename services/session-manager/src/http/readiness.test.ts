import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { startSessionManager } from '../server.js'

describe('/readyz while the database cannot be reached', () => {
  it('answers 503 not_ready naming the database and the cause, and stops cleanly', async () => {
    const running = await startSessionManager(
      loadConfig({ PORT: '0', CARE_STORE: 'postgres', DATABASE_URL: 'postgres://care@127.0.0.1:1/care' }),
      { logger: pino({ level: 'silent' }) },
    )
    try {
      const url = `http://127.0.0.1:${running.port}/readyz`
      let body: { error?: string; message?: string } = {}
      const deadline = Date.now() + 20_000
      while (!body.message?.startsWith('Waiting for the database') && Date.now() < deadline) {
        const res = await fetch(url)
        expect(res.status).toBe(503)
        body = (await res.json()) as typeof body
        if (!body.message?.startsWith('Waiting')) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(body.error).toBe('not_ready')
      expect(body.message).toMatch(/^Waiting for the database \(retrying every second\): .*ECONNREFUSED/)
    } finally {
      await running.stop()
    }
  })
})
