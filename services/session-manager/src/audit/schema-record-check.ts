import type { ChainedRecord } from '@care/event-log'
import { validateSessionLifecycleEvent } from '@care/schemas'

/**
 * The schema half of `care-sessions verify`, in the shape `verifyLog`'s `checkRecord` /
 * `checkRecordModule` expect: the reason a (hash-checked, chain-linked) record's event does not match
 * `SessionLifecycleEvent` once the chain fields are removed, or undefined. Being a module of its own,
 * `verifyLog`'s worker threads import it and validate where they parse, so no line is parsed twice.
 *
 * @example
 * await verifyLog(dir, { checkRecordModule: new URL('./schema-record-check.js', import.meta.url) })
 */
export function checkRecord(record: ChainedRecord): string | undefined {
  // The lifecycle schemas allow extra properties, so a record that passes with its chain fields passes
  // without them; checking it as is saves copying a million records. Only a failure pays for the copy.
  if (validateSessionLifecycleEvent.check(record)) return undefined
  const { seq: _seq, prev_hash: _prev, hash: _hash, ...event } = record
  if (validateSessionLifecycleEvent.check(event)) return undefined
  const result = validateSessionLifecycleEvent.validate(event)
  const reason = (result.ok ? [] : result.fields)
    .slice(0, 3)
    .map((f) => `${f.path || '/'} ${f.message}`)
    .join('; ')
  return `schema: ${reason || 'the event does not match SessionLifecycleEvent'}`
}
