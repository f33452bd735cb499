import { createWriteStream, type WriteStream } from 'node:fs'
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { archiveSegments, LogCorruptError, type LogHead, LogLockedError } from '@care/event-log'
import { logAuditSource } from '../audit/audit-source.js'
import { type ExportManifest, type ExportProgress, runExport } from '../audit/export.js'
import { parseExportFilters, SESSION_ID_PATTERN } from '../audit/export-filters.js'
import { createPseudonymizer, loadPseudonymKey, type Pseudonymizer } from '../audit/pseudonymize.js'
import {
  formatTimelineEntry,
  mergeTimeline,
  readWorkerRecords,
  sessionEvents,
  type TimelineEntry,
  WorkerLogError,
} from '../audit/timeline.js'
import { DEFAULT_DATA_DIR, databaseUrlProblem } from '../config.js'
import type { DatabaseCommand, DatabaseCommandOptions } from '../postgres/cli.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { runTransparencyCommand, TRANSPARENCY_USAGE } from '../transparency/cli.js'
import { storedExportProver, TreeFilesError } from '../transparency/export-proofs.js'
import { CHECKPOINTS_DIR } from '../transparency/transparency-log.js'
import { createProgress } from './progress.js'

/**
 * Where the CLI reads its environment and writes its output; tests pass their own.
 *
 * @example
 * const code = await main(['verify', dir], { stdout, stderr, env: {} })
 */
export interface CliIo {
  stdout: { write(text: string | Uint8Array): unknown; isTTY?: boolean }
  stderr: { write(text: string): unknown; isTTY?: boolean }
  env: Record<string, string | undefined>
}

/**
 * Exit codes: 0 fine, 1 the log or session failed the check (or could not be read), 2 a usage error.
 *
 * @example
 * if ((await main(argv)) === EXIT_FAILED) alertAuditor()
 */
export const EXIT_OK = 0
/** The check failed, the session is unknown, or a file could not be read. @example process.exitCode = EXIT_FAILED */
export const EXIT_FAILED = 1
/** A bad command, flag, filter, or a directory or file that does not exist. @example process.exitCode = EXIT_USAGE */
export const EXIT_USAGE = 2

class UsageError extends Error {}
class FailedError extends Error {}

const SESSION_ID = new RegExp(SESSION_ID_PATTERN)

const USAGE = `care-sessions: audit and maintain the CARE session log

Usage:
  care-sessions verify <data-dir> [--expected-head <seq>:<hash> | --manifest <file>]
  care-sessions replay <session_id> [--data-dir <dir>] [--json]
  care-sessions export [--data-dir <dir>] [--out <file>] [--from <iso>] [--to <iso>]
                       [--user-id <id>] [--session-id <id>] [--reason <reason>]
                       [--pseudonymize-key-file <file>]
  care-sessions export --database-url <url> [--schema <name>] [--checkpoints <dir>] [--out <file>] ...
  care-sessions timeline <session_id> [--data-dir <dir>] --with <worker.jsonl>... [--json]
  care-sessions archive [<data-dir>] --before <date> --to <dir> [--json]   (service stopped)
  care-sessions db <migrate|verify|checkpoint|import|export> [--database-url <url>] [--schema <name>]
                                                             (the PostgreSQL store)
${TRANSPARENCY_USAGE}
--data-dir defaults to $CARE_DATA_DIR, then ${DEFAULT_DATA_DIR}; --database-url to $DATABASE_URL.
Run 'care-sessions <command> --help' for details. Exit codes: 0 ok, 1 check failed / not found /
unreadable, 2 usage error (bad flag, bad filter, missing directory or file).
`

const DB_OPTIONS_HELP = `  --database-url <url>   postgres://user@host:5432/db (default: $DATABASE_URL)
  --schema <name>        the store's schema (default care_sessions)
  --json                 print the report as JSON
  -h, --help`

const DB_HELP: Record<DatabaseCommand, string> = {
  migrate: `Usage: care-sessions db migrate [options] [--owner-role <role>]

Creates or upgrades the store's schema (the service also does this at start).

Options:
  --owner-role <role>    the role that owns the schema's objects
${DB_OPTIONS_HELP}
`,
  verify: `Usage: care-sessions db verify [options]

Checks every hash, each session's chain and the checkpoint chain; exits 1 at the first problem.

Options:
${DB_OPTIONS_HELP}
`,
  checkpoint: `Usage: care-sessions db checkpoint [options]

Appends checkpoints over everything committed so far.

Options:
${DB_OPTIONS_HELP}
`,
  import: `Usage: care-sessions db import <data-dir> [options] [--owner-role <role>]

One-shot import of a JSONL event log (a session-manager data directory) into an empty schema.
Stop the service first.

Options:
  --owner-role <role>    the role that owns the schema's objects
${DB_OPTIONS_HELP}
`,
  export: `Usage: care-sessions db export <dir> [options]

Writes the database's events as a new JSONL log in <dir> (a new data directory), then verifies it.

Options:
${DB_OPTIONS_HELP}
`,
}

const HELP: Record<string, string> = {
  archive: `Usage: care-sessions archive [<data-dir>] --before <date> --to <dir> [options]

Retention: moves the sealed log segments whose events are all older than --before (oldest first,
stopping at the first that is not) with their index and digest files to --to, and records them in
<data-dir>/events/archive-manifest.json (written first; each file is copied, fsynced, then removed
from the log, so an interrupted run leaves a log that opens and verifies, and a rerun finishes it).
Each segment is re-hashed and chain-checked before it is moved. The service must be stopped: the
archiver takes the data directory's LOCK and refuses (exit 1) while the service holds it.
Choose --before older than the longest a session can stay open plus the retry window; sessions
whose events were archived are answered 410 session_archived. 'care-sessions verify <data-dir>'
then checks the kept log from the manifest's last archived record.

Options:
  --data-dir <dir>   session-manager data directory (or give it as <data-dir>)
  --before <date>    e.g. 2026-01-01 or 2026-01-01T00:00:00Z (UTC when no zone is given; not in the future)
  --to <dir>         archive directory (created if missing; reuse it to extend the archive)
  --json             print the report as JSON
  -h, --help
`,
  verify: `Usage: care-sessions verify <data-dir> [options]
       care-sessions verify --database-url <url> [--schema <name>] [--json]

Checks every line of the session log under <data-dir>/events: JSON, schema (SessionLifecycleEvent),
the hash chain and seq across all files, timestamp order, at most one start and one end per session,
and that the last line is complete. Prints a summary; on the first bad line prints
'<file>:<line>: <reason>' and exits 1.

Options:
  --expected-head <seq>:<hash>  also require the log to reach this record (detects a tail cut at a
                                line boundary, which the chain alone cannot)
  --manifest <file>             take the expected head from an export manifest's source_head
  --database-url <url>          verify the PostgreSQL store instead (per-session chains and checkpoints)
  --schema <name>               the store's schema (default care_sessions)
  --json                        print the report as JSON
  -h, --help
`,
  replay: `Usage: care-sessions replay <session_id> [options]

Prints the session's lifecycle events in chronological order (one scan of the log).

Options:
  --data-dir <dir>   session-manager data directory
  --json             one stored event per line (JSONL) instead of text
  -h, --help
`,
  export: `Usage: care-sessions export [options]

Streams lifecycle events as JSONL, grouped by session (each session contiguous, sessions in start
order). Sessions are selected by --session-id, --user-id (who started it) and --reason (how it
ended); their events are kept when --from <= timestamp < --to. With --out, writes <out> and
<out>.manifest.json (filters, counts, first/last record, the chain head the export was taken at).
When the data directory has a signed checkpoint, <out>.proofs.jsonl holds an inclusion proof per
record against it (the manifest's transparency.checkpoint); check with care-sessions verify-export.
With --database-url, exports the PostgreSQL store (each record as its tree line) with proofs from
its tree_nodes table against the newest checkpoint in --checkpoints (default <data-dir>/checkpoints).

Options:
  --data-dir <dir>                 session-manager data directory
  --database-url <url>             export the PostgreSQL store instead (default: none; not $DATABASE_URL)
  --schema <name>                  its schema (default care_sessions)
  --checkpoints <dir>              with --database-url: the instances' checkpoints directory
  --out <file>                     output file (default: stdout)
  --manifest <file>                where to write the manifest (default: <out>.manifest.json)
  --proofs <file>                  where to write the inclusion proofs (default: <out>.proofs.jsonl)
  --from <iso>, --to <iso>         time range, e.g. 2026-03-01 or 2026-03-01T12:00:00.000Z
  --user-id <id>, --session-id <id>
  --reason <explicit|idle_timeout|max_duration>
  --pseudonymize-key-file <file>   replace user_id/performer_id by 'pseud:' + HMAC-SHA256(key, id)
                                   (or $CARE_PSEUDONYM_KEY_FILE)
  -h, --help
`,
  db: `Usage: care-sessions db <command> [options]

Maintenance of the PostgreSQL store (CARE_STORE=postgres):
  migrate            create or upgrade the schema (the service also does this at start)
  verify             check every hash, session chain and checkpoint; exit 1 on the first problem
  checkpoint         append checkpoints over everything committed so far
  import <data-dir>  one-shot import of a JSONL event log into an empty schema (service stopped)
  export <dir>       write the database's events as a new JSONL log in <dir>, then verify it

Run 'care-sessions db <command> --help' for its options.
`,
  timeline: `Usage: care-sessions timeline <session_id> --with <worker.jsonl>... [options]

Merges the session's lifecycle events with the records of one or more worker logs tagged with the
same session_id into one chronological timeline. Equal timestamps: session.start first, session.end
last, then lifecycle before worker records, then log order.

Options:
  --data-dir <dir>     session-manager data directory
  --with <file>        a worker JSONL log (repeatable)
  --json               one record per line (JSONL) instead of text
  -h, --help
`,
}

const COMMON = { help: { type: 'boolean', short: 'h' }, 'data-dir': { type: 'string' } } as const
const OPTIONS = {
  verify: {
    ...COMMON,
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    'expected-head': { type: 'string' },
    manifest: { type: 'string' },
    json: { type: 'boolean' },
  },
  replay: { ...COMMON, json: { type: 'boolean' } },
  export: {
    ...COMMON,
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    checkpoints: { type: 'string' },
    out: { type: 'string', short: 'o' },
    manifest: { type: 'string' },
    proofs: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    'user-id': { type: 'string' },
    'session-id': { type: 'string' },
    reason: { type: 'string' },
    'pseudonymize-key-file': { type: 'string' },
  },
  timeline: { ...COMMON, with: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  archive: { ...COMMON, before: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } },
  db: {
    help: { type: 'boolean', short: 'h' },
    'database-url': { type: 'string' },
    schema: { type: 'string' },
    'owner-role': { type: 'string' },
    json: { type: 'boolean' },
  },
} as const satisfies Record<string, ParseArgsConfig['options']>

type Command = keyof typeof OPTIONS

/**
 * The `care-sessions` command line: `verify`, `replay`, `export` and `timeline` over a
 * session-manager data directory. Returns the exit code instead of exiting, so tests call it directly.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2))
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv
  // The help a usage error points to: the subcommand's when it is known.
  let helpHint = "Try 'care-sessions --help'."
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io[command === undefined ? 'stderr' : 'stdout'].write(USAGE)
      return command === undefined ? EXIT_USAGE : EXIT_OK
    }
    const transparencyExit = await runTransparencyCommand(argv, io)
    if (transparencyExit !== undefined) return transparencyExit
    if (!(command in OPTIONS)) throw new UsageError(`unknown command '${command}'`)
    const name = command as Command
    helpHint = `Try 'care-sessions ${name} --help'.`
    const parsed = parseCommandLine(name, rest)
    if (name === 'db') {
      const [sub, ...positionals] = parsed.positionals
      if (sub !== undefined && !isDatabaseCommand(sub)) {
        throw new UsageError(`unknown db command '${sub}' (use ${DATABASE_COMMANDS.join(', ')})`)
      }
      if (sub !== undefined) helpHint = `Try 'care-sessions db ${sub} --help'.`
      if (parsed.values.help || sub === undefined) {
        io[sub === undefined && !parsed.values.help ? 'stderr' : 'stdout'].write(
          sub === undefined ? HELP.db! : DB_HELP[sub],
        )
        return parsed.values.help ? EXIT_OK : EXIT_USAGE
      }
      return await database(sub, parsed.values, positionals, io)
    }
    if (parsed.values.help) {
      io.stdout.write(HELP[name]!)
      return EXIT_OK
    }
    switch (name) {
      case 'verify':
        return await verify(parsed.values, parsed.positionals, io)
      case 'replay':
        return await replay(parsed.values, parsed.positionals, io)
      case 'export':
        return await exportCommand(parsed.values, parsed.positionals, io)
      case 'timeline':
        return await timeline(parsed.values, parsed.positionals, io)
      case 'archive':
        return await archive(parsed.values, parsed.positionals, io)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`care-sessions: ${err.message}\n${helpHint}\n`)
      return EXIT_USAGE
    }
    if (err instanceof FailedError) {
      io.stderr.write(`care-sessions: ${err.message}\n`)
      return EXIT_FAILED
    }
    if (err instanceof LogCorruptError) {
      io.stderr.write(`care-sessions: ${err.file}:${err.line}: ${err.reason} (run 'care-sessions verify')\n`)
      return EXIT_FAILED
    }
    if (err instanceof LogLockedError) {
      io.stderr.write(
        `care-sessions: ${err.message}; stop the service first (it holds the data directory's LOCK)\n`,
      )
      return EXIT_FAILED
    }
    if (err instanceof WorkerLogError || err instanceof StoreUnavailableError) {
      // StoreUnavailableError: a database the command reads is unreachable (message names the cause).
      io.stderr.write(`care-sessions: ${err.message}\n`)
      return EXIT_FAILED
    }
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      io.stderr.write(`care-sessions: ${(err as Error).message}\n`)
      return EXIT_FAILED
    }
    throw err
  }
  return EXIT_USAGE
}

/** `node:util` parseArgs with the command's options; a bad flag becomes a one-line usage error. */
function parseCommandLine(name: Command, args: readonly string[]): { values: Values; positionals: string[] } {
  try {
    const config: ParseArgsConfig = {
      args: [...args],
      options: OPTIONS[name],
      allowPositionals: true,
      strict: true,
    }
    const result = parseArgs(config)
    return { values: result.values as Values, positionals: result.positionals }
  } catch (err) {
    // parseArgs explains at length ("To specify a positional argument starting with a '-', ..."): keep the first sentence.
    const message = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '')
    throw new UsageError(message)
  }
}

const DATABASE_COMMANDS: readonly DatabaseCommand[] = ['migrate', 'verify', 'checkpoint', 'import', 'export']

/** Loaded on use: only the database commands need the PostgreSQL client. */
async function runDatabaseCommand(command: DatabaseCommand, options: DatabaseCommandOptions, io: CliIo) {
  const { runDatabaseCommand: run } = await import('../postgres/cli.js')
  return run(command, options, lineIo(io))
}

function isDatabaseCommand(value: string): value is DatabaseCommand {
  return (DATABASE_COMMANDS as readonly string[]).includes(value)
}

/** `care-sessions db <command>`: the PostgreSQL store's maintenance, in src/postgres/cli.ts. */
async function database(
  command: DatabaseCommand,
  values: Values,
  positionals: readonly string[],
  io: CliIo,
): Promise<number> {
  const needsTarget = command === 'import' || command === 'export'
  const [target, extra] = positionals
  if (needsTarget && target === undefined) {
    throw new UsageError(`db ${command} needs a <${command === 'import' ? 'data-dir' : 'dir'}>`)
  }
  const unexpected = needsTarget ? extra : target
  if (unexpected !== undefined) throw new UsageError(`unexpected argument '${unexpected}'`)
  if (str(values, 'owner-role') !== undefined && command !== 'migrate' && command !== 'import') {
    throw new UsageError('--owner-role applies to db migrate and db import only')
  }
  const url = databaseUrlOf(values, io)
  return runDatabaseCommand(
    command,
    {
      url,
      schema: str(values, 'schema'),
      ownerRole: str(values, 'owner-role'),
      json: values.json === true,
      target,
    },
    io,
  )
}

/** --database-url, else $DATABASE_URL; it must be a postgres:// URL. */
function databaseUrlOf(values: Values, io: CliIo): string {
  const url = str(values, 'database-url') ?? (io.env.DATABASE_URL?.trim() || undefined)
  if (url === undefined) throw new UsageError('needs --database-url <url> or DATABASE_URL')
  const problem = databaseUrlProblem(url)
  if (problem !== undefined) throw new UsageError(`--database-url ${problem}`)
  return url
}

function lineIo(io: CliIo) {
  return {
    out: (line: string) => io.stdout.write(`${line}\n`),
    err: (line: string) => io.stderr.write(`${line}\n`),
  }
}

type Values = Record<string, string | boolean | string[] | undefined>

function str(values: Values, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

async function dataDirOf(values: Values, positional: string | undefined, io: CliIo): Promise<string> {
  const dir = resolve(
    positional ?? str(values, 'data-dir') ?? (io.env.CARE_DATA_DIR?.trim() || DEFAULT_DATA_DIR),
  )
  const info = await stat(dir).catch(() => undefined)
  if (!info) throw new UsageError(`data directory ${dir} does not exist`)
  if (!info.isDirectory()) throw new UsageError(`${dir} is not a directory`)
  const events = await stat(join(dir, 'events')).catch(() => undefined)
  if (!events?.isDirectory()) {
    throw new UsageError(`${dir} is not a session-manager data directory (no events/ directory inside)`)
  }
  return dir
}

/** `archive`: retention over `archiveSegments`, refusing while the service holds the LOCK. */
async function archive(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`)
  const beforeText = str(values, 'before')
  const to = str(values, 'to')
  if (beforeText === undefined) throw new UsageError('archive needs --before <date>')
  if (to === undefined) throw new UsageError('archive needs --to <dir>')
  const before = parseBefore(beforeText)
  // A cut-off in the future would archive the segments still being written to (a typo in the year
  // is the usual cause); retention is always about the past.
  if (before > Date.now()) {
    throw new UsageError(
      `--before ${new Date(before).toISOString()} is in the future; retention only archives the past`,
    )
  }
  const dir = await dataDirOf(values, positionals[0], io)
  const archiveDir = resolve(to)
  if (archiveDir === dir || archiveDir.startsWith(`${dir}/`)) {
    throw new UsageError('--to must be outside the data directory')
  }
  const report = await archiveSegments(dir, {
    before,
    to: archiveDir,
    recordTime: (record) => Date.parse(String(record.timestamp)),
  }).catch((err: unknown) => {
    // The log's archive manifest names another directory: a --to that does not fit this log.
    if (err instanceof TypeError && / archives to .*, not /.test(err.message)) {
      throw new UsageError(`${err.message.replace(/^archiveSegments: /, '')}; pass that directory as --to`)
    }
    throw err
  })
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify({ data_dir: dir, to: archiveDir, before: new Date(before).toISOString(), ...report })}\n`,
    )
    return EXIT_OK
  }
  const moved = [...report.finished, ...report.archived]
  io.stdout.write(
    `archived ${moved.length} segment(s) older than ${new Date(before).toISOString()} to ${archiveDir}` +
      `${moved.length > 0 ? `: ${moved.join(', ')}` : ''}\n`,
  )
  if (report.manifest) {
    const through = report.manifest.through
    io.stdout.write(
      `archive holds everything through seq ${through.seq} (${new Date(through.time_max).toISOString()})\n`,
    )
  }
  if (report.stoppedAt)
    io.stdout.write(`kept ${report.stoppedAt.file} and later: ${report.stoppedAt.reason}\n`)
  return EXIT_OK
}

/** `--before`: an ISO date (midnight UTC) or date-time; a zone-less date-time is read as UTC. */
function parseBefore(text: string): number {
  const iso = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text)
  const at = iso ? Date.parse(iso[4] && !iso[7] ? `${text}Z` : text) : Number.NaN
  // Date.parse rolls 2026-02-30 over to March: the calendar date must exist as written.
  const [year, month, day] = iso ? [Number(iso[1]), Number(iso[2]), Number(iso[3])] : [0, 0, 0]
  const calendar = new Date(Date.UTC(year, month - 1, day))
  const exists = calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day
  if (!Number.isFinite(at) || !exists) {
    throw new UsageError(`--before '${text}' is not an ISO date, e.g. 2026-01-01`)
  }
  return at
}

function sessionIdOf(positionals: readonly string[], command: string): string {
  const [id, extra] = positionals
  if (id === undefined) throw new UsageError(`${command} needs a <session_id>`)
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`)
  if (!SESSION_ID.test(id)) throw new UsageError(`'${id}' is not a session_id (a ULID)`)
  return id
}

async function verify(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`)
  if (str(values, 'database-url') !== undefined) {
    if (positionals.length > 0) throw new UsageError('give a <data-dir> or --database-url, not both')
    return verifyDatabase(values, io)
  }
  const dir = await dataDirOf(values, positionals[0], io)
  const expectedHead = await expectedHeadOf(values)
  // Loaded here: it brings the compiled schemas, which the other commands do not need.
  const { verifyDataDir } = await import('../audit/verify.js')
  const progress = createProgress(io.stderr, 'verify')
  const report = await verifyDataDir(dir, {
    onProgress: (done, total) => progress.update(done, total, 'bytes'),
    ...(expectedHead ? { expectedHead } : {}),
  })
  progress.finish()
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ data_dir: dir, ...report })}\n`)
  } else {
    const n = (value: number) => value.toLocaleString('en')
    const events = Object.entries(report.events)
      .map(([event, count]) => `${n(count)} ${event}`)
      .join(', ')
    const seconds = Math.max(report.durationMs, 1) / 1000
    io.stdout.write(
      `${report.ok ? 'OK' : 'FAILED'}: ${n(report.records)} events in ${report.files} file(s), ${n(report.sessions)} sessions` +
        `${events ? ` (${events})` : ''}; head seq ${report.head.seq} ${report.head.hash}; ` +
        `${(report.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s\n`,
    )
  }
  if (!report.ok) {
    const file = join(dir, 'events', report.problem.file)
    // Line 0 means "after the last line" (the log ends before the expected head): name that line.
    const line = report.problem.line === 0 ? await lineCount(file) : report.problem.line
    io.stderr.write(`${file}:${line}: ${report.problem.reason}\n`)
    return EXIT_FAILED
  }
  return EXIT_OK
}

/** `verify --database-url`: the same as `db verify`. */
async function verifyDatabase(values: Values, io: CliIo): Promise<number> {
  const url = databaseUrlOf(values, io)
  return runDatabaseCommand('verify', { url, schema: str(values, 'schema'), json: values.json === true }, io)
}

async function expectedHeadOf(values: Values): Promise<LogHead | undefined> {
  const text = str(values, 'expected-head')
  const manifestPath = str(values, 'manifest')
  if (text !== undefined && manifestPath !== undefined)
    throw new UsageError('use --expected-head or --manifest, not both')
  if (text !== undefined) {
    const match = /^(\d+):([0-9a-f]{64})$/.exec(text)
    if (!match) throw new UsageError('--expected-head must be <seq>:<64 hex hash>')
    return { seq: Number(match[1]), hash: match[2]! }
  }
  if (manifestPath !== undefined) {
    const raw = await readFile(manifestPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new UsageError(`manifest ${manifestPath} does not exist`) : err
    })
    let head: Partial<LogHead> | undefined
    try {
      head = (JSON.parse(raw) as Partial<ExportManifest>).source_head
    } catch {
      throw new UsageError(`manifest ${manifestPath} is not JSON`)
    }
    if (typeof head?.seq !== 'number' || typeof head.hash !== 'string') {
      throw new UsageError(`manifest ${manifestPath} has no source_head`)
    }
    return { seq: head.seq, hash: head.hash }
  }
  return undefined
}

async function replay(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const sessionId = sessionIdOf(positionals, 'replay')
  const dir = await dataDirOf(values, undefined, io)
  const events = await sessionEvents(logAuditSource(dir), sessionId)
  if (events.length === 0) throw new FailedError(`session ${sessionId} is not in the log under ${dir}`)
  if (values.json) {
    io.stdout.write(events.map((event) => `${JSON.stringify(event)}\n`).join(''))
  } else {
    writeTimeline(mergeTimeline(events, []), io)
  }
  return EXIT_OK
}

async function timeline(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const sessionId = sessionIdOf(positionals, 'timeline')
  const files = (values.with as string[] | undefined) ?? []
  if (files.length === 0) throw new UsageError('timeline needs at least one --with <worker.jsonl>')
  const dir = await dataDirOf(values, undefined, io)
  for (const file of files) {
    const info = await stat(file).catch(() => undefined)
    if (!info) throw new UsageError(`worker log ${file} does not exist`)
  }
  const events = await sessionEvents(logAuditSource(dir), sessionId)
  if (events.length === 0) throw new FailedError(`session ${sessionId} is not in the log under ${dir}`)
  const workerLogs = []
  for (const file of files) workerLogs.push({ file, records: await readWorkerRecords(file, sessionId) })
  const merged = mergeTimeline(events, workerLogs)
  if (values.json) io.stdout.write(merged.map((entry) => `${JSON.stringify(entry.record)}\n`).join(''))
  else writeTimeline(merged, io)
  return EXIT_OK
}

function writeTimeline(entries: readonly TimelineEntry[], io: CliIo): void {
  const first = entries[0]?.timestamp
  io.stdout.write(entries.map((entry) => `${formatTimelineEntry(entry, first)}\n`).join(''))
}

async function exportCommand(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`)
  const parsed = parseExportFilters({
    from: str(values, 'from'),
    to: str(values, 'to'),
    user_id: str(values, 'user-id'),
    session_id: str(values, 'session-id'),
    reason: str(values, 'reason'),
  })
  if (!parsed.ok) {
    throw new UsageError(
      parsed.fields.map((f) => `--${f.path.slice(1).replace('_', '-')}: ${f.message}`).join('; '),
    )
  }
  const databaseUrl = str(values, 'database-url')
  if (databaseUrl === undefined && (str(values, 'schema') ?? str(values, 'checkpoints')) !== undefined) {
    throw new UsageError('--schema and --checkpoints go with --database-url')
  }
  if (databaseUrl !== undefined) {
    const problem = databaseUrlProblem(databaseUrl)
    if (problem !== undefined) throw new UsageError(`--database-url ${problem}`)
  }
  const dir =
    databaseUrl === undefined
      ? await dataDirOf(values, undefined, io)
      : resolve(str(values, 'data-dir') ?? (io.env.CARE_DATA_DIR?.trim() || DEFAULT_DATA_DIR))
  const pseudonymizer = await pseudonymizerOf(values, io)
  const out = str(values, 'out')
  const manifestPath = str(values, 'manifest') ?? (out === undefined ? undefined : `${out}.manifest.json`)
  const proofsPath = str(values, 'proofs') ?? (out === undefined ? undefined : `${out}.proofs.jsonl`)
  if (out !== undefined) await requireParentDir(out, '--out')
  if (manifestPath !== undefined) await requireParentDir(manifestPath, '--manifest')
  if (proofsPath !== undefined) await requireParentDir(proofsPath, '--proofs')
  const progress = createProgress(io.stderr, 'export')
  const logBytes = io.stderr.isTTY && databaseUrl === undefined ? await eventsBytes(dir) : 0
  const onProgress = (p: ExportProgress) =>
    p.phase === 'scan' && p.bytes !== undefined
      ? progress.update(p.bytes, logBytes, 'bytes', 'reading the log')
      : progress.update(p.events, p.total, 'events', p.phase === 'scan' ? 'reading the log' : 'writing')

  // The PostgreSQL store (its tree lines, proofs from its table), or the log under the data directory.
  const database =
    databaseUrl === undefined
      ? undefined
      : (await import('../postgres/tree-export.js')).openPostgresExport({
          url: databaseUrl,
          ...(str(values, 'schema') !== undefined ? { schema: str(values, 'schema') } : {}),
          checkpointsDir: resolve(str(values, 'checkpoints') ?? join(dir, CHECKPOINTS_DIR)),
        })
  // Proof lines go to their own file (the dataset keeps one record per line), written like the dataset.
  const stored = proofsPath === undefined ? undefined : (database ?? storedExportProver(dir))
  const proofsFile = proofsPath === undefined ? undefined : await openPartial(proofsPath)
  const output = out === undefined ? undefined : await openPartial(out)
  let manifest: ExportManifest
  try {
    manifest = await runExport(
      database?.source ?? logAuditSource(dir),
      parsed.value,
      (chunk) => writeTo(output?.stream ?? io.stdout, chunk),
      {
        ...(pseudonymizer ? { pseudonymizer } : {}),
        onProgress,
        ...(stored && proofsFile
          ? { prover: stored.prover, proofSink: (chunk: Uint8Array) => writeTo(proofsFile.stream, chunk) }
          : {}),
      },
    )
    if (output) await output.commit()
    if (proofsFile && (manifest.transparency?.proofs ?? 0) > 0) await proofsFile.commit()
    else await proofsFile?.discard()
  } catch (err) {
    await output?.discard()
    await proofsFile?.discard()
    if (err instanceof TreeFilesError) throw new FailedError(err.message)
    throw err
  } finally {
    await (database ?? stored)?.close()
  }
  progress.finish()
  if (manifestPath !== undefined) await writeJsonFile(manifestPath, manifest)
  // With --out the command always says what it wrote (stdout stays free); to stdout only on a terminal.
  if (out !== undefined || io.stderr.isTTY) {
    io.stderr.write(
      `exported ${manifest.counts.events} events of ${manifest.counts.sessions} sessions (log head seq ${manifest.source_head.seq})` +
        `${out ? ` to ${resolve(out)}` : ''}${manifestPath ? `; manifest ${resolve(manifestPath)}` : ''}\n`,
    )
  }
  const proven = manifest.transparency
  if (proven && proofsPath !== undefined) {
    io.stderr.write(
      `inclusion proofs for ${proven.proofs} record(s) against the checkpoint at tree size ${proven.tree_size} in ${resolve(proofsPath)}` +
        `${proven.unproven > 0 ? `; ${proven.unproven} record(s) are newer than that checkpoint and have no proof` : ''}\n`,
    )
  }
  return EXIT_OK
}

/**
 * A file written as `<path>.partial` and renamed to `path` by `commit` (a half-written file never has
 * the final name), or removed by `discard`.
 */
async function openPartial(
  path: string,
): Promise<{ stream: WriteStream; commit(): Promise<void>; discard(): Promise<void> }> {
  const partial = `${path}.partial`
  const stream = createWriteStream(partial)
  await new Promise<void>((resolveOpen, reject) => {
    stream.once('open', () => resolveOpen())
    stream.once('error', reject)
  })
  return {
    stream,
    async commit() {
      await new Promise<void>((resolveEnd, reject) => {
        stream.once('error', reject)
        stream.end(() => resolveEnd())
      })
      await rename(partial, path)
    },
    async discard() {
      stream.destroy()
      await rm(partial, { force: true })
    },
  }
}

/** A usage error naming the flag when the file's directory does not exist (instead of ENOENT on `<file>.partial`). */
async function requireParentDir(file: string, flag: string): Promise<void> {
  const dir = dirname(resolve(file))
  const info = await stat(dir).catch(() => undefined)
  if (!info) throw new UsageError(`${flag} ${file}: directory ${dir} does not exist (create it first)`)
  if (!info.isDirectory()) throw new UsageError(`${flag} ${file}: ${dir} is not a directory`)
}

async function pseudonymizerOf(values: Values, io: CliIo): Promise<Pseudonymizer | undefined> {
  const keyFile =
    str(values, 'pseudonymize-key-file') ?? (io.env.CARE_PSEUDONYM_KEY_FILE?.trim() || undefined)
  if (keyFile === undefined) return undefined
  const key = await loadPseudonymKey(keyFile).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new UsageError(`key file ${keyFile} does not exist`) : err
  })
  try {
    return createPseudonymizer(key)
  } catch (err) {
    throw new UsageError(`key file ${keyFile}: ${(err as Error).message}`)
  }
}

function writeTo(
  stream: {
    write(chunk: string | Uint8Array): unknown
    once?(event: 'drain', listener: () => void): unknown
  },
  chunk: Uint8Array,
): void | Promise<void> {
  if (stream.write(chunk) === false && typeof stream.once === 'function') {
    return new Promise((resolveDrain) => stream.once?.('drain', resolveDrain))
  }
}

async function writeJsonFile(path: string, value: unknown): Promise<void> {
  const partial = `${path}.partial`
  const file = createWriteStream(partial)
  await new Promise<void>((resolveWrite, reject) => {
    file.once('error', reject)
    file.end(`${JSON.stringify(value, null, 2)}\n`, () => resolveWrite())
  })
  await rename(partial, path)
}

/** The number of the file's last line (0 for an empty or missing file). */
async function lineCount(file: string): Promise<number> {
  const bytes = await readFile(file).catch(() => Buffer.alloc(0))
  let lines = 0
  for (const byte of bytes) if (byte === 0x0a) lines++
  return bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a ? lines + 1 : lines
}

/** Total size of the log's segment files, the 100% of the export's first pass. */
async function eventsBytes(dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(join(dir, 'events'))) {
    if (name.endsWith('.jsonl')) total += (await stat(join(dir, 'events', name))).size
  }
  return total
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env }
}
