import { createHash } from 'node:crypto'
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { LogHead } from '@care/event-log'
import {
  asyncNodeReader,
  type Checkpoint,
  leafHash,
  levelFileName,
  type NodeReader,
  type NoteVerifier,
  openCheckpoint,
  ProofError,
  parseCheckpoint,
  parseNote,
  TreeProofs,
  verifyInclusion,
} from '@care/tlog'
import type { ExportManifest, ExportProofLine, RecordProver } from '../audit/export.js'
import { CHECKPOINTS_DIR, listCheckpointFiles, TREE_DIR, type TransparencyLog } from './transparency-log.js'

/**
 * The export prover of the running service: once the export's snapshot head is known it waits (at most
 * ~1 s) until the tree holds every record up to it (a record reaches the tree after its fdatasync),
 * signs a checkpoint at the tree's size, and proves records against that checkpoint. Without a signed
 * checkpoint (no key) it gives no prover; records beyond the checkpoint (signing disabled) get no proof.
 *
 * @example
 * await runExport(source, filters, write, { prover: serviceExportProver(tlog) })
 */
export function serviceExportProver(
  tlog: TransparencyLog,
): (head: LogHead) => Promise<RecordProver | undefined> {
  return async (head) => {
    for (let i = 0; i < 100 && tlog.size < head.seq; i++) await new Promise((r) => setTimeout(r, 10))
    await tlog.checkpoint()
    const latest = tlog.latestCheckpoint
    if (!latest) return undefined
    return checkpointProver(
      latest.note,
      tlog.proofs,
      (seq, err) =>
        new TreeFilesError(
          `cannot prove seq ${seq} against the checkpoint at size ${latest.size}: the tree's stored hashes do not match it (${err.message})`,
        ),
    )
  }
}

/**
 * A prover against the signed checkpoint `note` (C2SP signed note; its signature is not checked here,
 * `verify-export` does that) with proofs from `proofs`: each batch's proofs come from one read of the
 * stored hashes, and every proof is checked against the checkpoint's root before it is handed out, so
 * stored hashes that do not match (damaged, missing, cut, from another history) fail the export with
 * the error `mismatch` makes instead of producing a proof that does not verify. Other errors of the
 * read (an unreachable database: `StoreUnavailableError`) pass through unchanged.
 *
 * @example
 * const prover = checkpointProver(note, tlog.proofs, (seq, err) => new TreeFilesError(`seq ${seq}: ${err.message}`))
 */
export function checkpointProver(
  note: string,
  proofs: TreeProofs,
  mismatch: (seq: number, err: Error) => Error,
): RecordProver {
  const { size, rootHash } = parseCheckpoint(parseNote(note).text)
  return {
    checkpoint: { size, note },
    prove: async (records) => {
      const within = records.filter((r) => r.seq <= size)
      let hashes: Buffer[][] = []
      try {
        if (within.length > 0) {
          hashes = await proofs.inclusionProofs(
            within.map((r) => r.seq - 1),
            size,
          )
        }
      } catch (err) {
        // A missing hash (RangeError) or an impossible request is the stored tree's fault; anything else
        // (the database unreachable, a timeout) is not a mismatch and passes through as it is.
        if (!(err instanceof RangeError || err instanceof ProofError)) throw err
        proofs.forget()
        throw mismatch(within[0]!.seq, err)
      }
      const bySeq = new Map<number, Buffer[]>()
      for (const [i, record] of within.entries()) {
        const proof = hashes[i]!
        try {
          verifyInclusion(record.seq - 1, size, record.leafHash, proof, rootHash)
        } catch (err) {
          // Hashes read back and kept may be the damaged ones: the next proof reads them again.
          proofs.forget()
          throw mismatch(record.seq, err as Error)
        }
        bySeq.set(record.seq, proof)
      }
      return records.map((r) => bySeq.get(r.seq))
    },
  }
}

/**
 * Why the stored tree files cannot prove an export (they do not match the checkpoint they should cover).
 *
 * @example
 * try { await runExport(...) } catch (err) { if (err instanceof TreeFilesError) console.error(err.message) }
 */
export class TreeFilesError extends Error {
  override name = 'TreeFilesError'
}

/**
 * The export prover of the offline CLI: the newest checkpoint in `<dataDir>/checkpoints/` and the tree
 * files in `<dataDir>/tree/` (read only, never changed; the service flushes them before each
 * checkpoint). Every proof is checked against the checkpoint's root before it is written, so stale or
 * damaged tree files fail the export (`TreeFilesError`) instead of producing bad proofs. Undefined when
 * there is no checkpoint or no tree. Call `close` when done.
 *
 * @example
 * const stored = storedExportProver(dataDir)
 * try { await runExport(source, filters, write, { prover: stored.prover }) } finally { stored.close() }
 */
export function storedExportProver(dataDir: string): {
  prover: (head: LogHead) => Promise<RecordProver | undefined>
  close(): void
} {
  const reader = new TreeFilesReader(join(dataDir, TREE_DIR))
  return {
    close: () => reader.close(),
    prover: async () => {
      const newest = listCheckpointFiles(join(dataDir, CHECKPOINTS_DIR)).at(-1)
      if (!newest || !existsSync(join(dataDir, TREE_DIR, levelFileName(0)))) return undefined
      return checkpointProver(
        readFileSync(newest.path, 'utf8'),
        new TreeProofs(asyncNodeReader(reader)),
        (seq, err) =>
          new TreeFilesError(
            `cannot prove seq ${seq} against ${newest.path}: the tree files in ${join(dataDir, TREE_DIR)} do not match it (${err.message}); start the service once to rebuild them`,
          ),
      )
    },
  }
}

/** Reads complete-subtree hashes from the tree's level files without opening them for writing. */
class TreeFilesReader implements NodeReader {
  readonly #fds = new Map<number, number>()
  constructor(private readonly dir: string) {}

  node(level: number, index: number): Buffer {
    let fd = this.#fds.get(level)
    if (fd === undefined) {
      fd = openSync(join(this.dir, levelFileName(level)), 'r')
      this.#fds.set(level, fd)
    }
    const hash = Buffer.alloc(32)
    if (readSync(fd, hash, 0, 32, 32 * index) !== 32) {
      throw new RangeError(`no stored hash at level ${level}, index ${index}`)
    }
    return hash
  }

  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd)
    this.#fds.clear()
  }
}

/**
 * What `verifyExportFiles` checked: the checkpoint's origin and size, the records, and how many of them
 * were pseudonymised (for those the shipped leaf hash is proven, the content only once the original
 * line is shown).
 *
 * @example
 * const { records, size } = await verifyExportFiles({ file: 'out.jsonl', verifiers })
 */
export interface ExportVerifyResult {
  origin: string
  size: number
  records: number
  pseudonymized: boolean
}

/**
 * Why an export with proofs did not verify.
 *
 * @example
 * try { await verifyExportFiles(...) } catch (err) { if (err instanceof ExportProofError) console.error(err.message) }
 */
export class ExportProofError extends Error {
  override name = 'ExportProofError'
}

/**
 * Checks a JSONL export and its inclusion proofs offline, with only verifier keys: the `GET /export`
 * body saved to a file (records, proof lines, manifest line), or the CLI's `<out>`, `<out>.manifest.json`
 * and `<out>.proofs.jsonl`. Checks the manifest's checkpoint signature (unknown keys refused); that
 * the records' bytes and count are the manifest's `output` and `counts.events` (nothing added,
 * dropped or edited); and that each record has a proof of its leaf (the hash of the line itself, or of
 * the original line for a pseudonymised export) at its `seq` in the checkpoint's tree.
 *
 * @example
 * const result = await verifyExportFiles({ file: 'sessions.jsonl', verifiers: loadVerifierKeys(['log.vkey']) })
 */
export async function verifyExportFiles(options: {
  file: string
  manifestFile?: string
  proofsFile?: string
  verifiers: readonly NoteVerifier[]
}): Promise<ExportVerifyResult> {
  const records: { seq: number; leaf: Buffer }[] = []
  const proofs: ExportProofLine[] = []
  let manifest: ExportManifest | undefined
  const digest = createHash('sha256')
  let bytes = 0
  let lineNo = 0
  for await (const line of readLines(options.file)) {
    lineNo++
    const value = parseLine(line, `${options.file}:${lineNo}`)
    if (manifest !== undefined)
      throw new ExportProofError(`${options.file}:${lineNo}: a line after the manifest`)
    if ('manifest' in value) manifest = value.manifest as ExportManifest
    else if ('inclusion_proof' in value) proofs.push(value.inclusion_proof as ExportProofLine)
    else if ('error' in value)
      throw new ExportProofError(`${options.file}:${lineNo}: the export stopped with an error`)
    else {
      if (proofs.length > 0)
        throw new ExportProofError(`${options.file}:${lineNo}: a record after the proofs`)
      const raw = Buffer.from(line, 'utf8')
      digest.update(raw).update('\n')
      bytes += raw.length + 1
      records.push({ seq: value.seq as number, leaf: leafHash(raw) })
    }
  }
  if (manifest === undefined) {
    const path = options.manifestFile ?? `${options.file}.manifest.json`
    if (!existsSync(path)) throw new ExportProofError(`no manifest line in ${options.file} and no ${path}`)
    manifest = parseLine(readFileSync(path, 'utf8'), path) as unknown as ExportManifest
  }
  if (proofs.length === 0) {
    const path = options.proofsFile ?? `${options.file}.proofs.jsonl`
    if (existsSync(path)) {
      let n = 0
      for await (const line of readLines(path)) {
        const value = parseLine(line, `${path}:${++n}`)
        if (!('inclusion_proof' in value)) throw new ExportProofError(`${path}:${n}: not a proof line`)
        proofs.push(value.inclusion_proof as ExportProofLine)
      }
    }
  }
  return checkExport(manifest, records, proofs, digest.digest('hex'), bytes, options.verifiers)
}

function checkExport(
  manifest: ExportManifest,
  records: readonly { seq: number; leaf: Buffer }[],
  proofs: readonly ExportProofLine[],
  sha256: string,
  bytes: number,
  verifiers: readonly NoteVerifier[],
): ExportVerifyResult {
  const t = manifest.transparency
  if (!t || typeof t.checkpoint !== 'string') {
    throw new ExportProofError('the export carries no inclusion proofs (its manifest names no checkpoint)')
  }
  let checkpoint: Checkpoint
  try {
    checkpoint = openCheckpoint(t.checkpoint, verifiers).checkpoint
  } catch (err) {
    throw new ExportProofError(`checkpoint: ${(err as Error).message}`)
  }
  if (manifest.output?.sha256 !== sha256 || manifest.output?.bytes !== bytes) {
    throw new ExportProofError(
      'the records are not the ones the manifest describes (output sha256/bytes differ)',
    )
  }
  if (manifest.counts?.events !== records.length) {
    throw new ExportProofError(
      `the manifest counts ${manifest.counts?.events} records, the export has ${records.length}`,
    )
  }
  if (proofs.length < records.length) {
    throw new ExportProofError(
      `${records.length - proofs.length} record(s) have no inclusion proof (newer than the checkpoint at size ${checkpoint.size}); export again after the next checkpoint`,
    )
  }
  if (proofs.length > records.length) throw new ExportProofError('more proofs than records')
  const pseudonymized = manifest.pseudonymized != null
  for (const [i, record] of records.entries()) {
    const proof = proofs[i]!
    const where = `record ${i + 1} (seq ${record.seq})`
    if (
      !proof ||
      proof.seq !== record.seq ||
      !Array.isArray(proof.hashes) ||
      typeof proof.leaf_hash !== 'string'
    ) {
      throw new ExportProofError(`${where}: its proof line is missing or for another record`)
    }
    if (proof.tree_size !== checkpoint.size) {
      throw new ExportProofError(
        `${where}: proof is for tree size ${proof.tree_size}, the checkpoint's is ${checkpoint.size}`,
      )
    }
    const shipped = Buffer.from(proof.leaf_hash, 'base64')
    if (!pseudonymized && !shipped.equals(record.leaf)) {
      throw new ExportProofError(`${where}: the line does not hash to the proven leaf (edited?)`)
    }
    try {
      verifyInclusion(
        record.seq - 1,
        checkpoint.size,
        pseudonymized ? shipped : record.leaf,
        proof.hashes.map((h) => Buffer.from(String(h), 'base64')),
        checkpoint.rootHash,
      )
    } catch (err) {
      if (err instanceof ProofError) throw new ExportProofError(`${where}: ${err.message}`)
      throw err
    }
  }
  return { origin: checkpoint.origin, size: checkpoint.size, records: records.length, pseudonymized }
}

function parseLine(line: string, where: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new ExportProofError(`${where}: not JSON`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ExportProofError(`${where}: not a JSON object`)
  }
  return value as Record<string, unknown>
}

async function* readLines(path: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  for await (const line of lines) if (line !== '') yield line
}
