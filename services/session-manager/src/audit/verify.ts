import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type LogHead, type VerifyCounts, type VerifyProblem, verifyLog } from '../log/index.js'
import { checkLogSchemas, type SchemaProblem } from './schema-check.js'

/**
 * Result of `verifyDataDir`: `verifyLog`'s counts, plus the first problem of either check (the one
 * earliest in the log) when there is one.
 *
 * @example
 * const report = await verifyDataDir(dir)
 * if (!report.ok) console.error(`${report.problem.file}:${report.problem.line}: ${report.problem.reason}`)
 */
export type DataDirReport = VerifyCounts & { schemaChecked: number } & (
    | { ok: true }
    | { ok: false; problem: VerifyProblem }
  )

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
  /** Run the schema pass in a worker thread (default: when the compiled worker file exists). */
  parallel?: boolean
}

/**
 * Audits a data directory's log: everything `verifyLog` checks (JSON, hash chain across files, `seq`,
 * timestamp order, one start and one end per session, final newline, optional expected head) and that
 * every event matches `SessionLifecycleEvent`. The two passes run side by side (the schema pass in a
 * worker thread when available); the reported problem is the earliest one in log order.
 *
 * @example
 * const report = await verifyDataDir('.care-data/session-manager')
 * process.exitCode = report.ok ? 0 : 1
 */
export async function verifyDataDir(dir: string, options: DataDirVerifyOptions = {}): Promise<DataDirReport> {
  const workerUrl = new URL('./schema-check-worker.js', import.meta.url)
  const parallel = options.parallel ?? existsSync(fileURLToPath(workerUrl))
  const schemaPass = parallel ? schemaPassInWorker(workerUrl, dir) : checkLogSchemas(dir)
  schemaPass.catch(() => {})
  const chain = await verifyLog(dir, {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.expectedHead ? { expectedHead: options.expectedHead } : {}),
  })
  const schema = await schemaPass
  const { ok: _ok, ...counts } = chain
  const chainProblem = chain.ok ? undefined : chain.problem
  const problem = earliest(chainProblem, schema.problem)
  const base = { ...counts, schemaChecked: schema.checked }
  if ('problem' in base) delete (base as { problem?: unknown }).problem
  return problem ? { ...base, ok: false, problem } : { ...base, ok: true }
}

function earliest(a: VerifyProblem | undefined, b: SchemaProblem | undefined): VerifyProblem | undefined {
  if (!a || !b) return a ?? b
  if (a.file !== b.file) return a.file < b.file ? a : b
  // Line 0 means "after the end" (an expected head beyond the log).
  const lineA = a.line === 0 ? Number.POSITIVE_INFINITY : a.line
  return b.line < lineA ? b : a
}

function schemaPassInWorker(url: URL, dir: string): Promise<{ checked: number; problem?: SchemaProblem }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: { dir } })
    worker.once(
      'message',
      (
        message:
          | { ok: true; result: { checked: number; problem?: SchemaProblem } }
          | { ok: false; message: string },
      ) => {
        if (message.ok) resolve(message.result)
        else reject(new Error(message.message))
        void worker.terminate()
      },
    )
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`schema check worker exited with code ${code}`))
    })
  })
}
