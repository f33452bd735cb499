import { validateSessionLifecycleEvent } from '@care/schemas'
import { LogCorruptError, readLog } from '../log/index.js'

/**
 * The first line whose event does not match `SessionLifecycleEvent`, or undefined. File and line
 * are the segment file name and the 1-based line within it.
 *
 * @example
 * const problem = await checkLogSchemas(dir)
 * if (problem) console.error(`${problem.file}:${problem.line}: ${problem.reason}`)
 */
export interface SchemaProblem {
  file: string
  line: number
  reason: string
}

/**
 * Streams the log and validates every event (without its chain fields) against the lifecycle event
 * schema. Stops quietly at a chain problem: `verifyLog` reports those with its own reasons.
 *
 * @example
 * const problem = await checkLogSchemas('/var/lib/care')
 */
export async function checkLogSchemas(dir: string): Promise<{ checked: number; problem?: SchemaProblem }> {
  let file = 0
  let line = 0
  let checked = 0
  try {
    for await (const { record, position } of readLog(dir)) {
      if (position.file !== file) {
        file = position.file
        line = 0
      }
      line++
      const { seq: _seq, prev_hash: _prev, hash: _hash, ...event } = record
      if (!validateSessionLifecycleEvent.check(event)) {
        const result = validateSessionLifecycleEvent.validate(event)
        const fields = result.ok ? [] : result.fields
        const reason = fields
          .slice(0, 3)
          .map((f) => `${f.path || '/'} ${f.message}`)
          .join('; ')
        return {
          checked,
          problem: { file: segmentName(file), line, reason: `schema: ${reason || 'invalid event'}` },
        }
      }
      checked++
    }
  } catch (err) {
    if (!(err instanceof LogCorruptError)) throw err
  }
  return { checked }
}

function segmentName(file: number): string {
  return `events-${String(file).padStart(6, '0')}.jsonl`
}
