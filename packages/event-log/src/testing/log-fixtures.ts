import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { VerifyRules } from '../verify.js'

/**
 * A fresh temp data dir per test; `cleanup()` removes all of them.
 *
 * @example
 * const dirs = tempDirs()
 * afterEach(() => dirs.cleanup())
 * const { log } = await EventLog.open({ dir: await dirs.make() })
 */
export function tempDirs(): { make(): Promise<string>; cleanup(): Promise<void> } {
  const made: string[] = []
  return {
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'care-log-'))
      made.push(dir)
      return dir
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
    },
  }
}

const BASE_TIME = Date.parse('2026-03-01T12:00:00.000Z')

/**
 * The record rules of `sampleEvent` logs (the session-manager's own rules, restated for tests here).
 *
 * @example
 * expect(await verifyLog(dir, { rules: sampleRules })).toMatchObject({ ok: true, keys: 2 })
 */
export const sampleRules: VerifyRules = {
  kindField: 'event',
  timestampField: 'timestamp',
  pairing: { keyField: 'session_id', open: 'session.start', close: 'session.end', noun: 'session' },
}

/**
 * A realistic session lifecycle record; `i` makes ids, timestamps and the session unique and increasing.
 *
 * @example
 * await log.append(sampleEvent(1))
 * await log.append(sampleEvent(2, 'session.end', 1))
 */
export function sampleEvent(
  i: number,
  kind: 'session.start' | 'session.touch' | 'session.end' = 'session.start',
  session = i,
): Record<string, unknown> {
  const ulid = (n: number, prefix: string) => `${prefix}${String(n).padStart(26 - prefix.length, '0')}`
  const event: Record<string, unknown> = {
    schema_version: '1.1',
    event: kind,
    record_id: ulid(i, '01JR'),
    input_record_id: ulid(i, '01JI'),
    user_id: `user-${session % 97}`,
    session_id: ulid(session, '01JS'),
    timestamp: new Date(BASE_TIME + i * 1000).toISOString(),
    source: 'session_manager',
    input_source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-7',
  }
  if (kind === 'session.start') {
    event.metadata = { device: 'tablet', note: 'päivää ✓' }
    event.idle_timeout_ms = 900_000
    event.max_duration_ms = 14_400_000
  }
  if (kind === 'session.end') {
    event.reason = 'explicit'
    event.started_at = new Date(BASE_TIME).toISOString()
    event.ended_at = event.timestamp
  }
  return event
}

/**
 * Segment file names of a data dir, in order.
 *
 * @example
 * expect(await segmentFiles(dir)).toEqual(['events-000001.jsonl'])
 */
export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'events'))).filter((name) => name.endsWith('.jsonl')).sort()
}

/**
 * All lines of one segment file (without the trailing empty string).
 *
 * @example
 * const [first] = await linesOf(dir)
 */
export async function linesOf(dir: string, file = 'events-000001.jsonl'): Promise<string[]> {
  const text = await readFile(join(dir, 'events', file), 'utf8')
  return text.split('\n').slice(0, -1)
}
