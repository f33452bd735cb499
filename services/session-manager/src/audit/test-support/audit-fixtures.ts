import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventLog } from '@care/event-log'

export const BASE_TIME = Date.parse('2026-03-01T12:00:00.000Z')
const DIGEST = `sha256:${'ab'.repeat(32)}`

/** A ULID-shaped id: `prefix` then `n` zero-padded to 26 characters (digits are valid Crockford). */
export function ulidOf(n: number, prefix: string): string {
  return `${prefix}${String(n).padStart(26 - prefix.length, '0')}`
}

let nextRecord = 1

/** A schema-valid lifecycle event at `BASE_TIME + atSeconds`. */
export function lifecycleEvent(
  kind: 'session.start' | 'session.touch' | 'session.end',
  options: { session: number; user?: string; atSeconds: number; reason?: string; startedAtSeconds?: number },
): Record<string, unknown> {
  const timestamp = new Date(BASE_TIME + options.atSeconds * 1000).toISOString()
  const n = nextRecord++
  const event: Record<string, unknown> = {
    schema_version: '1.1',
    event: kind,
    record_id: ulidOf(n, '01JR'),
    user_id: options.user ?? `user-${options.session % 3}`,
    session_id: ulidOf(options.session, '01JS'),
    timestamp,
    source: 'session_manager',
    origin: 'human',
    performer_id: 'caregiver-7',
    input_record_id: ulidOf(n, '01JN'),
    input_source: 'ui',
    input_digest: DIGEST,
  }
  if (kind === 'session.start') {
    event.idle_timeout_ms = 900_000
    event.max_duration_ms = 14_400_000
    event.metadata = { device: 'tablet' }
  }
  if (kind === 'session.end') {
    event.reason = options.reason ?? 'explicit'
    event.started_at = new Date(BASE_TIME + (options.startedAtSeconds ?? 0) * 1000).toISOString()
    event.ended_at = timestamp
    if (event.reason !== 'explicit') {
      event.origin = 'system'
      delete event.performer_id
      delete event.input_record_id
      delete event.input_source
      delete event.input_digest
    }
  }
  return event
}

/** Appends `events` with the real `EventLog` (small segments when `maxFileBytes` is given). */
export async function writeLog(
  dir: string,
  events: Record<string, unknown>[],
  maxFileBytes?: number,
): Promise<void> {
  const { log } = await EventLog.open({ dir, ...(maxFileBytes ? { maxFileBytes } : {}) })
  try {
    for (const event of events) await log.append(event)
  } finally {
    await log.close()
  }
}

/**
 * Four sessions with interleaved events (times in seconds after BASE_TIME):
 * S1 user-a 0..40 explicit (touch 10, 30); S2 user-b 5..50 idle_timeout (touch 20);
 * S3 user-a 15..60 max_duration; S4 user-b 25, still open (touch 35, 55).
 */
export function scenario(): Record<string, unknown>[] {
  return [
    lifecycleEvent('session.start', { session: 1, user: 'user-a', atSeconds: 0 }),
    lifecycleEvent('session.start', { session: 2, user: 'user-b', atSeconds: 5 }),
    lifecycleEvent('session.touch', { session: 1, user: 'user-a', atSeconds: 10 }),
    lifecycleEvent('session.start', { session: 3, user: 'user-a', atSeconds: 15 }),
    lifecycleEvent('session.touch', { session: 2, user: 'user-b', atSeconds: 20 }),
    lifecycleEvent('session.start', { session: 4, user: 'user-b', atSeconds: 25 }),
    lifecycleEvent('session.touch', { session: 1, user: 'user-a', atSeconds: 30 }),
    lifecycleEvent('session.touch', { session: 4, user: 'user-b', atSeconds: 35 }),
    lifecycleEvent('session.end', { session: 1, user: 'user-a', atSeconds: 40, reason: 'explicit' }),
    lifecycleEvent('session.end', {
      session: 2,
      user: 'user-b',
      atSeconds: 50,
      reason: 'idle_timeout',
      startedAtSeconds: 5,
    }),
    lifecycleEvent('session.touch', { session: 4, user: 'user-b', atSeconds: 55 }),
    lifecycleEvent('session.end', {
      session: 3,
      user: 'user-a',
      atSeconds: 60,
      reason: 'max_duration',
      startedAtSeconds: 15,
    }),
  ]
}

/** Temp directories removed by `cleanup()`. */
export function tempDirs(): { make(): Promise<string>; cleanup(): Promise<void> } {
  const made: string[] = []
  return {
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'care-audit-'))
      made.push(dir)
      return dir
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
    },
  }
}

/** Collects what the CLI writes. */
export function captureIo(env: Record<string, string | undefined> = {}) {
  let stdout = ''
  let stderr = ''
  return {
    io: {
      stdout: {
        write: (text: string | Uint8Array) => {
          stdout += typeof text === 'string' ? text : Buffer.from(text).toString('utf8')
        },
      },
      stderr: { write: (text: string) => (stderr += text) },
      env,
    },
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
  }
}
