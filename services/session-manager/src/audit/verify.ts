import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { LogHead } from '@care/event-log'
import { checkRecord } from './schema-record-check.js'
import { type SessionLogVerifyReport, verifySessionLog } from './session-log-rules.js'

/**
 * Options of `verifyDataDir`.
 *
 * @example
 * await verifyDataDir(dir, { onProgress: (done, total) => bar.update(done, total) })
 */
export interface DataDirVerifyOptions {
  onProgress?(bytes: number, totalBytes: number): void
  /** A head published elsewhere (e.g. an export manifest's `source_head`): also detects a tail cut at a line boundary. */
  expectedHead?: LogHead
  /** Worker threads for `verifyLog` (default: its own choice, one per core for big logs). */
  workers?: number
}

const SCHEMA_CHECK_MODULE = new URL('./schema-record-check.js', import.meta.url)

/**
 * Audits a data directory's log: everything `verifyLog` checks (JSON, hash chain across files, `seq`,
 * final newline, optional expected head), the session rules (`SESSION_LOG_RULES`: timestamp order, one
 * start and one end per session) plus that
 * every event matches `SessionLifecycleEvent`. The schema check runs inside `verifyLog`'s line pass (on
 * its worker threads when it uses them), so each line is parsed once; the first bad line, whatever the
 * check, is the one reported.
 *
 * @example
 * const report = await verifyDataDir('.care-data/session-manager')
 * if (!report.ok) console.error(`${report.problem.file}:${report.problem.line}: ${report.problem.reason}`)
 */
export function verifyDataDir(
  dir: string,
  options: DataDirVerifyOptions = {},
): Promise<SessionLogVerifyReport> {
  // Workers import the check by URL, which needs the compiled module; from the TypeScript sources
  // (tests) the check runs in-process as a function.
  const compiled = existsSync(fileURLToPath(SCHEMA_CHECK_MODULE))
  return verifySessionLog(dir, {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.expectedHead ? { expectedHead: options.expectedHead } : {}),
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(compiled ? { checkRecordModule: SCHEMA_CHECK_MODULE } : { checkRecord }),
  })
}
