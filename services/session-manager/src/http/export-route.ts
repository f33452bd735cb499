import { LogCorruptError } from '@care/event-log'
import { errorResponse } from '@care/schemas'
import type { Handler } from 'hono'
import { stream } from 'hono/streaming'
import type { AuditSource } from '../audit/audit-source.js'
import { type ExportOptions, runExport } from '../audit/export.js'
import { parseExportFilters } from '../audit/export-filters.js'
import { sendError } from './errors.js'
import type { SessionManagerEnv } from './http-env.js'

const FILTER_NAMES = ['from', 'to', 'user_id', 'session_id', 'reason', 'proofs'] as const

/**
 * The media type of `GET /export`: one JSON object per line.
 *
 * @example
 * if (res.headers.get('content-type') === EXPORT_CONTENT_TYPE) for (const line of text.split('\n')) JSON.parse(line)
 */
export const EXPORT_CONTENT_TYPE = 'application/x-ndjson; charset=utf-8'

/**
 * `GET /export?from=&to=&user_id=&session_id=&reason=`: the same grouped JSONL export as
 * `care-sessions export`, streamed. When the store keeps a signed Merkle tree (`prover`), the record lines
 * are followed by one `{"inclusion_proof": {...}}` line per record, against the checkpoint the manifest
 * names (`manifest.transparency`); `proofs=false` leaves them out. The manifest cannot travel in headers (it is only known at the
 * end), so it is the last line, `{"manifest": {...}}`. If reading fails after the first byte, the last
 * line is an error body in the shared shape instead: `{"error": "log_integrity", ...}` naming the file
 * and line when the log is damaged there, else `{"error": "internal_error", ...}`. A client must treat
 * an export without a final manifest line as incomplete. The handler only sees an
 * `AuditSource`; whether events live in files or a database is not its business.
 *
 * @example
 * app.get('/export', requireRole(tokens, 'auditor'), ready, createExportHandler(() => source, logger))
 */
export function createExportHandler(
  source: () => AuditSource | undefined,
  logger: { error(o: object, m: string): void },
  prover?: () => ExportOptions['prover'] | undefined,
): Handler<SessionManagerEnv> {
  return async function exportSessions(c) {
    const query = c.req.query()
    const unknown = Object.keys(query).filter((name) => !(FILTER_NAMES as readonly string[]).includes(name))
    const repeated = FILTER_NAMES.filter((name) => (c.req.queries(name)?.length ?? 0) > 1)
    if (unknown.length > 0 || repeated.length > 0) {
      return sendError(c, 'validation_failed', {
        fields: [
          ...unknown.map((name) => ({
            path: `/${name}`,
            message: `unknown filter; use ${FILTER_NAMES.join(', ')}`,
          })),
          ...repeated.map((name) => ({ path: `/${name}`, message: 'give this filter at most once' })),
        ],
      })
    }
    const { proofs, ...filterQuery } = query
    if (proofs !== undefined && proofs !== 'true' && proofs !== 'false') {
      return sendError(c, 'validation_failed', {
        fields: [{ path: '/proofs', message: 'proofs must be true or false' }],
      })
    }
    const parsed = parseExportFilters(filterQuery)
    if (!parsed.ok) return sendError(c, 'validation_failed', { fields: parsed.fields })
    const events = source()
    if (!events) return sendError(c, 'not_ready')
    const proveWith = proofs === 'false' ? undefined : prover?.()

    c.header('Content-Type', EXPORT_CONTENT_TYPE)
    c.header('Cache-Control', 'no-store')
    c.header('X-Content-Type-Options', 'nosniff')
    return stream(c, async (out) => {
      let aborted = false
      out.onAbort(() => {
        aborted = true
      })
      try {
        const manifest = await runExport(
          events,
          parsed.value,
          async (chunk) => {
            if (aborted) throw new ExportAborted()
            await out.write(chunk)
          },
          proveWith ? { prover: proveWith } : {},
        )
        await out.write(`${JSON.stringify({ manifest })}\n`)
      } catch (err) {
        if (err instanceof ExportAborted || aborted) return
        if (err instanceof LogCorruptError) {
          const { file, line, reason } = err
          logger.error(
            { err, code: 'log_integrity', file, line, reason },
            `export stopped: event log is damaged at ${file}:${line}`,
          )
          const message = `The export stopped at a damaged event log line, ${file}:${line} (${reason}); nothing after it was sent. Run care-sessions verify.`
          await out.write(`${JSON.stringify(errorResponse('log_integrity', { message }).body)}\n`)
          return
        }
        logger.error({ err }, 'export failed while streaming')
        const message = 'The export stopped before its end.'
        await out.write(`${JSON.stringify(errorResponse('internal_error', { message }).body)}\n`)
      }
    })
  }
}

class ExportAborted extends Error {}
