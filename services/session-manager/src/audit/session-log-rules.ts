import { type VerifyOptions, type VerifyReport, type VerifyRules, verifyLog } from '@care/event-log'

/**
 * The session-manager's record-level rules for its event log, checked by `verifyLog` on top of the
 * chain: every record has an `event` kind and a `session_id`, timestamps never go back, and each
 * session has at most one `session.start` and one `session.end`, the end after the start. The log
 * package knows nothing of sessions; this is where those rules live.
 *
 * @example
 * const report = await verifyLog(dir, { rules: SESSION_LOG_RULES })
 */
export const SESSION_LOG_RULES: VerifyRules = {
  kindField: 'event',
  timestampField: 'timestamp',
  pairing: { keyField: 'session_id', open: 'session.start', close: 'session.end', noun: 'session' },
}

/**
 * `verifyLog` with the session rules (`SESSION_LOG_RULES`); `sessions` is the number of sessions
 * started. Schema checks are added by `verifyDataDir`.
 *
 * @example
 * const report = await verifySessionLog(dataDir)
 * if (!report.ok) console.error(report.problem)
 */
export async function verifySessionLog(
  dir: string,
  options: Omit<VerifyOptions, 'rules'> = {},
): Promise<SessionLogVerifyReport> {
  const report = await verifyLog(dir, { ...options, rules: SESSION_LOG_RULES })
  return { ...report, sessions: report.keys }
}

/**
 * `verifyLog`'s report for a session log: `sessions` is the number of sessions started (`keys`).
 *
 * @example
 * console.log(`${report.records} events, ${report.sessions} sessions`)
 */
export type SessionLogVerifyReport = VerifyReport & { sessions: number }
