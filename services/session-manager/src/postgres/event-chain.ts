import { createHash, hash as oneShotHash } from 'node:crypto'
import { canonicalJson, GENESIS_HASH } from '@care/event-log'
import type { SessionLifecycleEvent } from '@care/schemas'
import type { StoredEvent } from '../store/event-store.js'

export { GENESIS_HASH }

/**
 * SHA-256 (hex) of a string.
 *
 * @example
 * sha256Hex('abc') // 'ba7816bf...'
 */
export function sha256Hex(text: string): string {
  return oneShotHash('sha256', text, 'hex')
}

/**
 * Chains one event into its session: `body` is the canonical JSON of the event plus `prev_hash`
 * (the hash of the session's previous event, 64 zeros for the start) and `hash` is its SHA-256.
 * The database keeps `body` verbatim, so verification re-hashes exactly the stored text.
 *
 * @example
 * const { body, hash } = chainEvent(startEvent, GENESIS_HASH)
 */
export function chainEvent(event: SessionLifecycleEvent, prevHash: string): { body: string; hash: string } {
  const body = canonicalJson({ ...event, prev_hash: prevHash })
  return { body, hash: sha256Hex(body) }
}

/**
 * Turns a stored row back into the event as the read side shows it: the event's fields, its
 * session `prev_hash`, its global `seq` and its `hash`.
 *
 * @example
 * const stored = storedEventOf({ seq: '7', body, hash })
 */
export function storedEventOf(row: { seq: string | number; body: string; hash: string }): StoredEvent {
  return { ...(JSON.parse(row.body) as object), seq: Number(row.seq), hash: row.hash } as StoredEvent
}

/**
 * The event as it was answered to the caller (no chain fields), from a stored body.
 *
 * @example
 * const output = eventOfBody(row.body)
 */
export function eventOfBody(body: string): SessionLifecycleEvent {
  const { prev_hash: _prev, ...event } = JSON.parse(body) as Record<string, unknown>
  return event as unknown as SessionLifecycleEvent
}

/** The fields a checkpoint's hash covers. */
export interface CheckpointFields {
  checkpoint_no: number
  from_seq: number
  to_seq: number
  event_count: number
  events_digest: string
  prev_hash: string
}

/**
 * The hash of a checkpoint: SHA-256 over the canonical JSON of its fields, `prev_hash` being
 * the previous checkpoint's hash. Checkpoints form one chain over the whole table.
 *
 * @example
 * const hash = checkpointHash({ checkpoint_no: 1, from_seq: 0, to_seq: 10, event_count: 10, events_digest, prev_hash: GENESIS_HASH })
 */
export function checkpointHash(fields: CheckpointFields): string {
  return sha256Hex(canonicalJson(fields))
}

/**
 * Digest of the events of one checkpoint range in seq order: SHA-256 over `seq hash\n` lines,
 * so a deleted, inserted or renumbered row inside the range changes it.
 *
 * @example
 * const digest = new RangeDigest()
 * for (const row of rows) digest.add(row.seq, row.hash)
 * digest.hex()
 */
export class RangeDigest {
  private readonly hash = createHash('sha256')
  count = 0

  add(seq: number | string, hash: string): void {
    this.hash.update(`${seq} ${hash}\n`)
    this.count++
  }

  hex(): string {
    return this.hash.digest('hex')
  }
}
