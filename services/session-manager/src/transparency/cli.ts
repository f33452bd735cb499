import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateNoteKey, NoteError } from '@care/tlog'
import { ExportProofError, verifyExportFiles } from './export-proofs.js'
import { loadVerifierKeys, ProvenExportError, verifyProvenExport } from './proven-export.js'
import { CHECKPOINTS_DIR } from './transparency-log.js'
import { type CheckpointVerifyReport, verifyAgainstCheckpoints } from './verify-checkpoints.js'

/** Where a transparency command writes; the shape of `care-sessions`' own `CliIo`. */
export interface TransparencyCliIo {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
  env: Record<string, string | undefined>
}

export const TRANSPARENCY_USAGE = `  care-sessions keygen --name <origin> --out <path-prefix> [--force]
  care-sessions verify <data-dir> --public-key <vkey|file>... [--checkpoints <dir>] [--json]
  care-sessions verify --database-url <url> [--schema <name>] --public-key <vkey|file>... [--checkpoints <dir>] [--json]
  care-sessions verify-export --public-key <vkey|file>... <proven-export.json>
  care-sessions verify-export --public-key <vkey|file>... <export.jsonl> [--manifest <file>] [--proofs <file>]
`

/**
 * Runs `keygen`, `verify-export`, and `verify` when it has `--public-key`; returns undefined for any
 * other command line (so `care-sessions` handles it). Exit codes: 0 ok, 1 check failed, 2 usage.
 *
 * @example
 * const code = await runTransparencyCommand(process.argv.slice(2), io)
 * if (code !== undefined) process.exitCode = code
 */
export async function runTransparencyCommand(
  argv: readonly string[],
  io: TransparencyCliIo,
): Promise<number | undefined> {
  const [command, ...rest] = argv
  if (command === 'verify' && !rest.some((a) => a === '--public-key' || a.startsWith('--public-key='))) {
    return undefined
  }
  if (command !== 'keygen' && command !== 'verify-export' && command !== 'verify') return undefined
  let values: Record<string, string | boolean | string[] | undefined>
  let positionals: string[]
  try {
    const parsed = parseArgs({
      args: [...rest],
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        out: { type: 'string' },
        'public-key': { type: 'string', multiple: true },
        checkpoints: { type: 'string' },
        'data-dir': { type: 'string' },
        'database-url': { type: 'string' },
        schema: { type: 'string' },
        manifest: { type: 'string' },
        proofs: { type: 'string' },
        json: { type: 'boolean' },
        force: { type: 'boolean' },
      },
    })
    values = parsed.values
    positionals = parsed.positionals
  } catch (err) {
    io.stderr.write(`care-sessions: ${(err as Error).message}\nUsage:\n${TRANSPARENCY_USAGE}`)
    return 2
  }
  try {
    if (command === 'keygen') return keygen(values, io)
    const verifiers = loadVerifierKeys((values['public-key'] as string[] | undefined) ?? [])
    if (verifiers.length === 0) return usage(io, `${command} needs --public-key`)
    if (command === 'verify-export') {
      const file = positionals[0]
      if (file === undefined || positionals.length > 1) return usage(io, 'verify-export needs one <file>')
      if (!isProvenExportDocument(file)) {
        const result = await verifyExportFiles({
          file,
          verifiers,
          ...(typeof values.manifest === 'string' ? { manifestFile: values.manifest } : {}),
          ...(typeof values.proofs === 'string' ? { proofsFile: values.proofs } : {}),
        })
        io.stdout.write(
          `OK: ${result.records} record(s) included in ${result.origin} at tree size ${result.size} (signed checkpoint verified)` +
            `${result.pseudonymized ? "; pseudonymised: the original lines' leaf hashes are proven, each record's content only once its original line is shown" : ''}\n`,
        )
        return 0
      }
      const result = verifyProvenExport(JSON.parse(readFileSync(file, 'utf8')), verifiers)
      io.stdout.write(
        `OK: ${result.records} record(s) included in ${result.origin} at tree size ${result.size} (signed checkpoint verified)\n`,
      )
      return 0
    }
    const dataDir = resolve(
      positionals[0] ?? (values['data-dir'] as string | undefined) ?? io.env.CARE_DATA_DIR ?? '.',
    )
    const checkpointsDir = resolve(
      (values.checkpoints as string | undefined) ?? join(dataDir, CHECKPOINTS_DIR),
    )
    const databaseUrl = values['database-url'] as string | undefined
    const { chain, report, subject } =
      databaseUrl === undefined
        ? await verifyDataDirAgainst(dataDir, checkpointsDir, verifiers)
        : await verifyDatabaseAgainst(
            databaseUrl,
            values.schema as string | undefined,
            checkpointsDir,
            verifiers,
          )
    const problems = [...(chain.problem === undefined ? [] : [chain.problem]), ...report.problems]
    // Nothing signed yet is a failure (nothing was proven against a key), said as what it is.
    const noCheckpointYet = report.checkpoints.length === 0
    if (noCheckpointYet)
      problems.push(
        `no checkpoint has been written yet in ${checkpointsDir}: the service signs one (with CARE_CHECKPOINT_KEY_FILE set) ` +
          'after CARE_CHECKPOINT_EVERY records, CARE_CHECKPOINT_INTERVAL_MS after the first unsigned record, and at shutdown; ' +
          'nothing could be checked against the public key (verify without --public-key checks the hash chain alone)',
      )
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ ...subject, chain_ok: chain.ok, ...report, problems })}\n`)
    } else {
      const newest = report.newestVerified
      io.stdout.write(
        `${problems.length === 0 ? 'OK' : 'FAILED'}: ${report.records} record(s); hash chain ${chain.ok ? 'ok' : 'BROKEN'}; ` +
          (noCheckpointYet
            ? 'no checkpoint written yet'
            : `${report.checkpoints.filter((c) => c.ok).length}/${report.checkpoints.length} checkpoint(s) verified`) +
          `${newest ? `; newest verified checkpoint: size ${newest.size} root ${newest.rootHash} (${newest.file})` : ''}\n`,
      )
      for (const problem of problems) io.stderr.write(`${problem}\n`)
    }
    return problems.length === 0 ? 0 : 1
  } catch (err) {
    if (err instanceof ProvenExportError || err instanceof ExportProofError || err instanceof SyntaxError) {
      io.stderr.write(`care-sessions: FAILED: ${err.message}\n`)
      return 1
    }
    if (err instanceof NoteError) return usage(io, `bad key: ${err.message}`)
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code === 'string') {
      io.stderr.write(`care-sessions: ${(err as Error).message}\n`)
      return 1
    }
    throw err
  }
}

type ChainVerdict = { ok: boolean; problem?: string }

async function verifyDataDirAgainst(
  dataDir: string,
  checkpointsDir: string,
  verifiers: ReturnType<typeof loadVerifierKeys>,
): Promise<{ chain: ChainVerdict; report: CheckpointVerifyReport; subject: Record<string, string> }> {
  const { verifyDataDir } = await import('../audit/verify.js')
  const verified = await verifyDataDir(dataDir)
  const chain: ChainVerdict = verified.ok
    ? { ok: true }
    : { ok: false, problem: `${verified.problem.file}:${verified.problem.line}: ${verified.problem.reason}` }
  const report = await verifyAgainstCheckpoints({ dataDir, checkpointsDir, verifiers })
  return { chain, report, subject: { data_dir: dataDir } }
}

/** The PostgreSQL store: its own chains and checkpoint rows (`verifyPostgres`), then its tree's lines. */
async function verifyDatabaseAgainst(
  url: string,
  schema: string | undefined,
  checkpointsDir: string,
  verifiers: ReturnType<typeof loadVerifierKeys>,
): Promise<{ chain: ChainVerdict; report: CheckpointVerifyReport; subject: Record<string, string> }> {
  const { createToolPool } = await import('../postgres/database.js')
  const { verifyPostgres } = await import('../postgres/verify.js')
  const { postgresTreeLines } = await import('../postgres/tree-lines.js')
  const { DEFAULT_SCHEMA, schemaNames } = await import('../postgres/schema-names.js')
  const pool = createToolPool(url, 2)
  try {
    const names = schemaNames(schema ?? DEFAULT_SCHEMA)
    const verified = await verifyPostgres({ pool, schema: names.raw })
    const chain: ChainVerdict = verified.ok
      ? { ok: true }
      : { ok: false, problem: `database: ${JSON.stringify(verified.problem)}` }
    const report = await verifyAgainstCheckpoints({
      lines: postgresTreeLines(pool, names),
      checkpointsDir,
      verifiers,
    })
    return { chain, report, subject: { schema: names.raw } }
  } finally {
    await pool.end()
  }
}

function keygen(values: Record<string, unknown>, io: TransparencyCliIo): number {
  const name = values.name
  const out = values.out
  if (typeof name !== 'string' || typeof out !== 'string') return usage(io, 'keygen needs --name and --out')
  const files = [`${out}.skey`, `${out}.vkey`]
  if (values.force === true) {
    for (const file of files) rmSync(file, { force: true })
  } else {
    const existing = files.find((file) => existsSync(file))
    if (existing !== undefined) return keyFileExists(io, existing)
  }
  const { signerKey, verifierKey } = generateNoteKey(name)
  // 'wx': never overwrite a key (a concurrent keygen loses cleanly); the signer key is readable by its owner only.
  try {
    writeFileSync(`${out}.skey`, `${signerKey}\n`, { flag: 'wx', mode: 0o600 })
    writeFileSync(`${out}.vkey`, `${verifierKey}\n`, { flag: 'wx', mode: 0o644 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return keyFileExists(io, (err as NodeJS.ErrnoException).path ?? out)
    throw err
  }
  io.stdout.write(
    `${verifierKey}\nwrote ${out}.skey (secret: set CARE_CHECKPOINT_KEY_FILE=${resolve(`${out}.skey`)}) and ${out}.vkey (give it to auditors)\n`,
  )
  return 0
}

function keyFileExists(io: TransparencyCliIo, file: string): number {
  io.stderr.write(
    `care-sessions: key file ${file} exists; remove it or pass --force (checkpoints signed with the old key then need the old .vkey to verify)\n`,
  )
  return 2
}

/** A `care.proven-export` JSON document (from `GET /proofs/export`) rather than a JSONL export. */
function isProvenExportDocument(file: string): boolean {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(256)
    const n = readSync(fd, head, 0, head.length, 0)
    return /^\s*\{\s*"kind"\s*:\s*"care\.proven-export"/.test(head.subarray(0, n).toString('utf8'))
  } finally {
    closeSync(fd)
  }
}

function usage(io: TransparencyCliIo, message: string): number {
  io.stderr.write(`care-sessions: ${message}\nUsage:\n${TRANSPARENCY_USAGE}`)
  return 2
}
