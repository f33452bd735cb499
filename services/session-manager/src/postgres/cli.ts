import { writeCheckpoint } from './checkpoints.js'
import { createToolPool } from './database.js'
import { exportToJsonlLog, importJsonlLog } from './jsonl-transfer.js'
import { migrate } from './migrations.js'
import { DEFAULT_SCHEMA, schemaNames } from './schema-names.js'
import { verifyPostgres } from './verify.js'

/** Where the database commands write, one line at a time. */
export interface CliIo {
  out(line: string): void
  err(line: string): void
}

/** The PostgreSQL store's maintenance commands (`care-sessions db <command>`). */
export type DatabaseCommand = 'migrate' | 'verify' | 'checkpoint' | 'import' | 'export'

/**
 * What a database command needs, already parsed and checked by the `care-sessions` command line
 * (src/cli/cli.ts): this module does no argument parsing of its own.
 *
 * @example
 * const options: DatabaseCommandOptions = { url: 'postgres://care@db/care', json: false }
 */
export interface DatabaseCommandOptions {
  url: string
  schema?: string | undefined
  ownerRole?: string | undefined
  json: boolean
  /** The data directory of `import` (read) or `export` (written). */
  target?: string | undefined
}

/**
 * Runs one PostgreSQL store command: migrations, verification, checkpoints and the JSONL
 * import/export. Returns the exit code (0 ok, 1 a check failed or the database said no).
 *
 * @example
 * process.exitCode = await runDatabaseCommand('verify', { url, json: false }, { out: console.log, err: console.error })
 */
export async function runDatabaseCommand(
  command: DatabaseCommand,
  options: DatabaseCommandOptions,
  io: CliIo,
): Promise<number> {
  const schema = options.schema ?? DEFAULT_SCHEMA
  const { ownerRole, target } = options
  const print = (value: unknown, text: string) => io.out(options.json ? JSON.stringify(value) : text)
  const pool = createToolPool(options.url, 2)
  try {
    const t = schemaNames(schema)
    switch (command) {
      case 'migrate': {
        const report = await migrate(pool, t, { ownerRole })
        print(
          report,
          `schema ${schema} at version ${report.current} (applied: ${report.applied.join(', ') || 'none'})`,
        )
        return 0
      }
      case 'verify': {
        const report = await verifyPostgres({ pool, schema })
        const summary = `${report.records} events, ${report.sessions} sessions, ${report.checkpoints} checkpoints, ${report.unanchored} after the newest checkpoint`
        if (report.ok) {
          const head = report.head ? `; head checkpoint ${report.head.checkpoint_no} ${report.head.hash}` : ''
          print(report, `ok: ${summary}${head}`)
          return 0
        }
        const where =
          report.problem.seq === undefined
            ? `checkpoint ${report.problem.checkpoint_no}`
            : `seq ${report.problem.seq}`
        print(report, `FAILED at ${where}: ${report.problem.reason} (${summary} before it)`)
        return 1
      }
      case 'checkpoint': {
        let written = 0
        let last: Awaited<ReturnType<typeof writeCheckpoint>>
        for (;;) {
          const next = await writeCheckpoint(pool, t)
          if (!next) break
          last = next
          written++
        }
        print(
          { written, last },
          written
            ? `wrote ${written} checkpoint(s), newest ${last!.checkpoint_no} ${last!.hash}`
            : 'nothing new to checkpoint',
        )
        return 0
      }
      case 'import':
      case 'export': {
        const report =
          command === 'import'
            ? await importJsonlLog(target!, { pool, schema, ownerRole })
            : await exportToJsonlLog({ pool, schema }, target!)
        print(
          report,
          `${report.ok ? 'ok' : 'FAILED'}: ${command}ed ${report.events} events; content sha256 ${report.sourceDigest}` +
            (report.ok ? '' : ` (target ${report.targetDigest})`),
        )
        return report.ok ? 0 : 1
      }
    }
  } catch (error) {
    io.err(`care-sessions db ${command}: ${(error as Error).message}`)
    return 1
  } finally {
    await pool.end()
  }
}

/**
 * `care-sessions db <argv>` for callers that hold an argument list (the former `care-sessions-pg`):
 * parsed by the one `care-sessions` command line, so the flags and exit codes are the same
 * (0 ok, 1 a check failed, 2 usage). `DATABASE_URL` is read from `env` when `--database-url` is not given.
 *
 * @example
 * process.exitCode = await runPostgresCli(['verify', '--database-url', url], { out: console.log, err: console.error })
 */
export async function runPostgresCli(argv: readonly string[], io: CliIo, env = process.env): Promise<number> {
  const { main } = await import('../cli/cli.js')
  const lines = (write: (line: string) => void) => ({
    write(text: string | Uint8Array) {
      const value = typeof text === 'string' ? text : Buffer.from(text).toString('utf8')
      for (const line of value.replace(/\n$/, '').split('\n')) write(line)
      return true
    },
  })
  return main(['db', ...argv], { stdout: lines(io.out), stderr: lines(io.err), env })
}
