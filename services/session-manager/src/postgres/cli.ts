#!/usr/bin/env node
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { writeCheckpoint } from './checkpoints.js'
import { exportToJsonlLog, importJsonlLog } from './jsonl-transfer.js'
import { migrate } from './migrations.js'
import { DEFAULT_SCHEMA, schemaNames } from './schema-names.js'
import { verifyPostgres } from './verify.js'

const USAGE = `usage: care-sessions-pg <command> [--database-url URL] [--schema NAME] [--owner-role ROLE] [--json]
commands:
  migrate            create or upgrade the schema (the service also does this at start)
  verify             check every hash, session chain and checkpoint; exit 1 on the first problem
  checkpoint         append checkpoints over everything committed so far
  import <data-dir>  one-shot import of a JSONL event log into an empty schema (service stopped)
  export <dir>       write the database's events as a new JSONL log in <dir>, then verify it
DATABASE_URL is used when --database-url is not given.`

/** Where the CLI writes. */
export interface CliIo {
  out(line: string): void
  err(line: string): void
}

/**
 * The `care-sessions-pg` command line: migrations, verification, checkpoints and the JSONL
 * import/export for the PostgreSQL store. Returns the exit code (0 ok, 1 a check failed, 2 usage).
 *
 * @example
 * process.exitCode = await runPostgresCli(['verify', '--database-url', url], { out: console.log, err: console.error })
 */
export async function runPostgresCli(argv: readonly string[], io: CliIo, env = process.env): Promise<number> {
  const args: string[] = []
  const flags: Record<string, string | true> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--json') flags.json = true
    else if (arg.startsWith('--')) flags[arg.slice(2)] = argv[++i] ?? ''
    else args.push(arg)
  }
  const url = typeof flags['database-url'] === 'string' ? flags['database-url'] : env.DATABASE_URL
  const [command, target] = args
  if (!command || !url || ((command === 'import' || command === 'export') && !target)) {
    io.err(USAGE)
    return 2
  }
  const schema = typeof flags.schema === 'string' ? flags.schema : DEFAULT_SCHEMA
  const ownerRole = typeof flags['owner-role'] === 'string' ? flags['owner-role'] : undefined
  const print = (value: unknown, text: string) => io.out(flags.json ? JSON.stringify(value) : text)
  const pool = new pg.Pool({ connectionString: url, max: 2 })
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
      default:
        io.err(USAGE)
        return 2
    }
  } catch (error) {
    io.err(`care-sessions-pg ${command}: ${(error as Error).message}`)
    return 1
  } finally {
    await pool.end()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runPostgresCli(process.argv.slice(2), {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  })
}
