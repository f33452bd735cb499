import type { CrashKind, PowerLossFileSystem } from '@care/event-log/testing'
import { compileValidator, ErrorResponse } from '@care/schemas'
import { monotonicFactory } from 'ulid'
import { expect } from 'vitest'
import { verifySessionLog } from '../../audit/session-log-rules.js'
import type { ManualClock } from '../../sessions/test-support/memory-event-store.js'
import { type BootedService, bootService, DATA_DIR } from './service-harness.js'

const validateError = compileValidator(ErrorResponse)

/** What the client was told was stored (2xx answers). */
export interface Acked {
  started: Set<string>
  ended: Set<string>
  touches: Map<string, string>
}

export function requestBody(
  clock: ManualClock,
  newId: (t: number) => string,
  extra: Record<string, unknown> = {},
) {
  return {
    schema_version: '1.1',
    record_id: newId(clock.now()),
    user_id: 'user-1',
    timestamp: new Date(clock.now()).toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...extra,
  }
}

export async function post(
  booted: BootedService,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await booted.app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = (await res.json()) as Record<string, unknown>
  if (res.status >= 300) {
    // The only failure a storage fault may cause: 503 storage_unavailable with Retry-After.
    expect(res.status, JSON.stringify(json)).toBe(503)
    expect(validateError.check(json)).toBe(true)
    expect(json.error).toBe('storage_unavailable')
    expect(res.headers.get('retry-after')).toBe('1')
  }
  return { status: res.status, body: json }
}

/**
 * Starts three sessions at once (one group commit), touches, ends, rotates segments (small
 * maxFileBytes) and retries every refused request once, as a client would after Retry-After.
 */
export async function scenario(booted: BootedService, clock: ManualClock, acked: Acked): Promise<void> {
  const newId = monotonicFactory()
  const send = async (path: string, body: Record<string, unknown>) => {
    let answer = await post(booted, path, body)
    if (answer.status === 503) answer = await post(booted, path, body)
    return answer
  }
  const starts = await Promise.all([1, 2, 3].map(() => send('/sessions.start', requestBody(clock, newId))))
  const ids: string[] = []
  for (const s of starts) {
    if (s.status < 300) {
      acked.started.add(s.body.session_id as string)
      ids.push(s.body.session_id as string)
    }
  }
  for (const id of ids) {
    clock.advance(1000)
    const touch = await send('/sessions.touch', requestBody(clock, newId, { session_id: id }))
    if (touch.status < 300) acked.touches.set(touch.body.record_id as string, id)
  }
  const [first, second] = ids
  if (first) {
    const end = await send('/sessions.end', requestBody(clock, newId, { session_id: first }))
    if (end.status < 300) acked.ended.add(first)
  }
  const more = await send(
    '/sessions.start',
    requestBody(clock, newId, { metadata: { note: 'x'.repeat(600) } }),
  )
  if (more.status < 300) acked.started.add(more.body.session_id as string)
  if (second) {
    const end = await send('/sessions.end', requestBody(clock, newId, { session_id: second }))
    if (end.status < 300) acked.ended.add(second)
  }
  const third = ids[2]
  if (third) {
    // Reads go to disk too: a retry of a stored request and an auditor's timeline.
    const body = requestBody(clock, newId, { session_id: third })
    const touch = await post(booted, '/sessions.touch', body)
    if (touch.status < 300) {
      acked.touches.set(touch.body.record_id as string, third)
      const retry = await post(booted, '/sessions.touch', body)
      if (retry.status < 300) expect(retry.body).toEqual(touch.body)
    }
    const timeline = await booted.app.request(`/sessions/${third}/timeline`)
    if (timeline.status !== 200) {
      expect(timeline.status).toBe(503)
      expect(((await timeline.json()) as { error: string }).error).toBe('storage_unavailable')
    }
  }
}

/** After a crash (power loss by default) and a clean restart, everything acknowledged is there and the log verifies. */
export async function expectAckedDurable(
  disk: PowerLossFileSystem,
  clock: ManualClock,
  acked: Acked,
  kind: CrashKind = 'power-loss',
): Promise<void> {
  if (!disk.crashed) disk.crash()
  disk.reboot(kind)
  const booted = await bootService({ fs: disk, dir: DATA_DIR, clock, maxFileBytes: 1500 })
  try {
    for (const id of acked.started) expect(await booted.service.describe(id), `session ${id}`).toBeDefined()
    for (const id of acked.ended) expect((await booted.service.describe(id))?.status).toBe('ended')
    for (const [recordId, sessionId] of acked.touches) {
      const page = await booted.service.timeline(sessionId)
      expect(page?.events.map((e) => e.record_id)).toContain(recordId)
    }
    const res = await post(booted, '/sessions.start', requestBody(clock, monotonicFactory()))
    expect(res.status).toBe(201)
  } finally {
    expect(await booted.stop()).toBeUndefined()
  }
  const report = await verifySessionLog(DATA_DIR, { fs: disk })
  expect(report, JSON.stringify(report)).toMatchObject({ ok: true })
}
