import { FaultyFileSystem } from '@care/event-log/testing'
import { compileValidator, ErrorResponse } from '@care/schemas'
import { monotonicFactory } from 'ulid'
import { describe, expect, it } from 'vitest'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import {
  type BootedService,
  bootService,
  type CapturedLine,
  DATA_DIR,
  freshDisk,
} from './test-support/service-harness.js'

const validateError = compileValidator(ErrorResponse)
const newId = monotonicFactory()
const clock = new ManualClock()

function start(booted: BootedService, extra: Record<string, unknown> = {}) {
  return booted.app.request('/sessions.start', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      schema_version: '1.1',
      record_id: newId(clock.now()),
      user_id: 'user-1',
      timestamp: new Date(clock.now()).toISOString(),
      source: 'ui',
      origin: 'human',
      performer_id: 'caregiver-1',
      ...extra,
    }),
  })
}

async function expect503(res: Response, code = 'storage_unavailable') {
  expect(res.status).toBe(503)
  expect(res.headers.get('retry-after')).toBe('1')
  const body = (await res.json()) as { error: string }
  expect(validateError.check(body)).toBe(true)
  expect(body.error).toBe(code)
}

/** The line an operator sees: level error, names the errno, says nothing was stored. */
function expectClearLogLine(lines: CapturedLine[], errno: string) {
  expect(lines).toContainEqual(
    expect.objectContaining({ level: 'error', code: errno, msg: 'event not stored; answered 503' }),
  )
}

async function boot() {
  const disk = await freshDisk()
  const fs = new FaultyFileSystem(disk)
  const booted = await bootService({ fs, dir: DATA_DIR, clock })
  return { disk, fs, booted }
}

describe('disk full and read-only data directory', () => {
  it('answers 503 with Retry-After on ENOSPC, logs it, corrupts nothing, and serves again once space returns', async () => {
    const { disk, fs, booted } = await boot()
    expect((await start(booted)).status).toBe(201)
    const before = disk.contents(`${DATA_DIR}/events/events-000001.jsonl`)
    // The disk fills up in the middle of a write: 100 bytes land, then ENOSPC.
    fs.fail('write', { errno: 'ENOSPC', times: 'forever', bytesBeforeFailure: 100 })
    for (let i = 0; i < 5; i++) await expect503(await start(booted))
    expectClearLogLine(booted.lines, 'ENOSPC')
    expect(disk.contents(`${DATA_DIR}/events/events-000001.jsonl`)).toEqual(before)
    // A full disk is not a broken log: readiness stays green so the balancer keeps retrying here.
    expect((await booted.app.request('/readyz')).status).toBe(200)

    fs.clear('write')
    const res = await start(booted)
    expect(res.status).toBe(201)
    expect(await booted.stop()).toBeUndefined()
    expect(await verifySessionLog(DATA_DIR, { fs: disk })).toMatchObject({ ok: true, records: 2 })
  })

  it('answers 503 and reports not ready when fdatasync hits ENOSPC, and keeps every acknowledged event after restart', async () => {
    const { disk, fs, booted } = await boot()
    const ok = await start(booted)
    const acked = ((await ok.json()) as { session_id: string }).session_id
    fs.fail('fdatasync', { errno: 'ENOSPC' })
    await expect503(await start(booted))
    expectClearLogLine(booted.lines, 'FSYNC_FAILED')
    // The kernel may have dropped the unsynced pages: nothing more is acknowledged until a restart.
    fs.clear()
    await expect503(await start(booted))
    await expect503(await booted.app.request('/readyz'))
    await booted.stop()
    disk.crash()
    disk.reboot('power-loss')
    const again = await bootService({ fs: disk, dir: DATA_DIR, clock })
    expect((await again.service.describe(acked))?.status).toBe('open')
    expect((await start(again)).status).toBe(201)
    expect(await again.stop()).toBeUndefined()
    expect((await verifySessionLog(DATA_DIR, { fs: disk })).ok).toBe(true)
  })

  it.each(['EROFS', 'EACCES'])(
    'answers 503 when the data directory turns read-only (%s) mid-run, and verifies after a restart',
    async (errno) => {
      const { disk, fs, booted } = await boot()
      expect((await start(booted)).status).toBe(201)
      // A remount read-only refuses writes and the rollback truncate alike.
      for (const op of ['write', 'ftruncate', 'open', 'fdatasync'] as const)
        fs.fail(op, { errno, times: 'forever' })
      await expect503(await start(booted))
      await expect503(await start(booted))
      expect(
        booted.lines.some(
          (l) => l.level === 'error' && String(l.code).match(new RegExp(`${errno}|LOG_FAILED`)),
        ),
      ).toBe(true)
      await booted.stop()
      fs.clear()
      disk.crash()
      disk.reboot('power-loss')
      const again = await bootService({ fs: disk, dir: DATA_DIR, clock })
      expect((await start(again)).status).toBe(201)
      expect(await again.stop()).toBeUndefined()
      expect(await verifySessionLog(DATA_DIR, { fs: disk })).toMatchObject({ ok: true, records: 2 })
    },
  )

  it.each(['EROFS', 'EACCES'])(
    'refuses to start on a read-only data directory (%s) with a clear error, and starts once it is writable',
    async (errno) => {
      const disk = await freshDisk()
      const fs = new FaultyFileSystem(disk)
      fs.fail('open', { errno, times: 'forever' })
      fs.fail('mkdir', { errno, times: 'forever' })
      fs.fail('fsyncDir', { errno, times: 'forever' })
      await expect(bootService({ fs, dir: DATA_DIR, clock })).rejects.toMatchObject({ code: errno })
      fs.clear()
      const booted = await bootService({ fs, dir: DATA_DIR, clock })
      expect((await start(booted)).status).toBe(201)
      expect(await booted.stop()).toBeUndefined()
    },
  )

  it('starts on a full disk after a torn append: reads served, writes 503, readiness says why, cut finished once space returns', async () => {
    const disk = await freshDisk()
    const first = await bootService({ fs: disk, dir: DATA_DIR, clock })
    const started = await start(first)
    expect(started.status).toBe(201)
    const { session_id: sessionId } = (await started.json()) as { session_id: string }
    expect(await first.stop()).toBeUndefined()
    // A crash in the middle of the next append left half a line; then the disk filled up.
    const segment = `${DATA_DIR}/events/events-000001.jsonl`
    const torn = Buffer.from('{"event":"session.start","input_record_id":"01JR')
    const handle = await disk.open(segment, 'write')
    await handle.write(torn, 0, torn.length, await handle.size())
    await handle.sync()
    await handle.close()
    const before = disk.contents(segment)
    const fs = new FaultyFileSystem(disk)
    fs.fail('write', { errno: 'ENOSPC', times: 'forever', path: '/events/' })

    const booted = await bootService({ fs, dir: DATA_DIR, clock })
    expect((await booted.app.request(`/sessions/${sessionId}`)).status).toBe(200)
    for (let i = 0; i < 3; i++) await expect503(await start(booted))
    const ready = await booted.app.request('/readyz')
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      storage: expect.stringContaining('disk full'),
    })
    expect(disk.contents(segment)).toEqual(before)

    fs.clear('write')
    expect((await start(booted)).status).toBe(201)
    expect(await (await booted.app.request('/readyz')).json()).not.toHaveProperty('storage')
    expect(await booted.stop()).toBeUndefined()
    expect(disk.contents(`${segment}.broken`)).toEqual(torn)
    expect(await verifySessionLog(DATA_DIR, { fs: disk })).toMatchObject({ ok: true, records: 2 })
  })
})
