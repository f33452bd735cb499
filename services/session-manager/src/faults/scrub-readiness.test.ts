import { describe, expect, it } from 'vitest'
import { startInputAt } from '../sessions/test-support/inputs.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { bootService, DATA_DIR, freshDisk } from './test-support/service-harness.js'

describe('the background scrub in /readyz', () => {
  it('reports progress while sealed segments match, and turns /readyz red naming file:line on a mismatch', async () => {
    const disk = await freshDisk()
    const clock = new ManualClock()
    const booted = await bootService({ fs: disk, dir: DATA_DIR, clock, maxFileBytes: 4000 })
    try {
      for (let i = 0; i < 30; i++)
        await booted.service.start(startInputAt(clock.now(), { user_id: `user-${i}` }))
      const sealed = disk
        .fileNames(`${DATA_DIR}/events`)
        .filter((n) => n.endsWith('.jsonl'))
        .sort()
      expect(sealed.length).toBeGreaterThan(2)
      const ok = await booted.store.scrub()
      expect(ok).toMatchObject({ lastResult: 'ok' })
      const ready = await booted.app.request('/readyz')
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({
        status: 'ready',
        store: { scrub: { lastResult: 'ok', segmentsChecked: ok.segmentsTotal } },
      })

      // A byte of the first sealed segment changes on disk (the second line's user_id).
      const path = `${DATA_DIR}/events/${sealed[0]}`
      const bytes = disk.contents(path)!
      const secondLine = bytes.indexOf(0x0a) + 1
      const at = bytes.indexOf('user-1', secondLine) + 5
      bytes.writeUInt8('9'.charCodeAt(0), at)
      disk.put(path, bytes)
      const found = await booted.store.scrub()
      expect(found.mismatch).toMatchObject({ file: sealed[0], line: 2 })
      const red = await booted.app.request('/readyz')
      expect(red.status).toBe(503)
      const body = (await red.json()) as { error: string; message: string }
      expect(body.error).toBe('log_integrity')
      expect(body.message).toContain(`${sealed[0]}:2`)
    } finally {
      await booted.stop()
    }
  })
})
