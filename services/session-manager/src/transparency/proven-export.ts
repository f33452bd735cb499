import { existsSync, readFileSync } from 'node:fs'
import {
  leafHash,
  type NoteVerifier,
  openCheckpoint,
  ProofError,
  parseVerifierKey,
  verifyInclusion,
} from '@care/tlog'
import { checkpointProver, TreeFilesError } from './export-proofs.js'
import type { TransparencyLog } from './transparency-log.js'

/**
 * A self-contained, offline-checkable export: the signed checkpoint it is proven against, and for each
 * exported record its exact log line (the Merkle leaf bytes) and its RFC 9162 inclusion proof (base64
 * hashes, leaf to root) against that checkpoint. Holding only the log's public key, anyone can check
 * every record without seeing any other record of the log.
 *
 * @example
 * const doc: ProvenExport = JSON.parse(readFileSync('session.proven.json', 'utf8'))
 */
export interface ProvenExport {
  kind: 'care.proven-export'
  version: 1
  /** The C2SP signed checkpoint (note text) every proof below is against. */
  checkpoint: string
  records: { seq: number; line: string; inclusion_proof: string[] }[]
}

/**
 * Why a proven export did not verify.
 *
 * @example
 * try { verifyProvenExport(doc, keys) } catch (err) { if (err instanceof ProvenExportError) console.error(err.message) }
 */
export class ProvenExportError extends Error {
  override name = 'ProvenExportError'
}

/** Records proven per read of the stored hashes. */
const PROOF_BATCH = 256

/**
 * Builds a `ProvenExport` of the records `select` picks (parsed JSON of each line), against the newest
 * signed checkpoint; undefined when there is no checkpoint yet. Reads the store's leaves once. Every
 * proof is checked against the checkpoint's root (`checkpointProver`): stored hashes that are missing
 * or do not match reject with `TreeFilesError` instead of giving a proof that does not verify.
 *
 * @example
 * const doc = await buildProvenExport(tlog, (record) => record.session_id === id)
 */
export async function buildProvenExport(
  tlog: TransparencyLog,
  select: (record: Record<string, unknown>) => boolean,
): Promise<ProvenExport | undefined> {
  const latest = tlog.latestCheckpoint
  if (!latest) return undefined
  const records: (ProvenExport['records'][number] & { leafHash: Buffer })[] = []
  let index = 0
  for await (const line of tlog.leaves()) {
    if (index >= latest.size) break
    const text = line.toString('utf8')
    const record = JSON.parse(text) as Record<string, unknown>
    if (select(record)) {
      records.push({ seq: index + 1, line: text, inclusion_proof: [], leafHash: leafHash(line) })
    }
    index++
  }
  const prover = checkpointProver(
    latest.note,
    tlog.proofs,
    (seq, err) =>
      new TreeFilesError(
        `cannot prove seq ${seq} against the checkpoint at size ${latest.size}: the tree's stored hashes do not match it (${err.message})`,
      ),
  )
  // The proofs of PROOF_BATCH records at a time, each batch from one read of the stored hashes.
  for (let at = 0; at < records.length; at += PROOF_BATCH) {
    const batch = records.slice(at, at + PROOF_BATCH)
    const proofs = await prover.prove(batch)
    for (const [i, r] of batch.entries()) r.inclusion_proof = proofs[i]!.map((h) => h.toString('base64'))
  }
  return {
    kind: 'care.proven-export',
    version: 1,
    checkpoint: latest.note,
    records: records.map(({ seq, line, inclusion_proof }) => ({ seq, line, inclusion_proof })),
  }
}
/**
 * Checks a proven export offline: the checkpoint must be signed by one of `verifiers` (unknown keys are
 * refused), and every record's line must be the leaf at its `seq` in the checkpoint's tree. Returns the
 * checkpoint's origin and size and the number of records checked.
 *
 * @example
 * const { size, records } = verifyProvenExport(JSON.parse(text), [parseVerifierKey(vkey)])
 */
export function verifyProvenExport(
  doc: unknown,
  verifiers: readonly NoteVerifier[],
): { origin: string; size: number; records: number } {
  const d = doc as Partial<ProvenExport> | null
  if (d === null || typeof d !== 'object' || d.kind !== 'care.proven-export' || d.version !== 1) {
    throw new ProvenExportError('not a care.proven-export document (version 1)')
  }
  if (typeof d.checkpoint !== 'string' || !Array.isArray(d.records)) {
    throw new ProvenExportError('the document needs a checkpoint and records')
  }
  let opened: ReturnType<typeof openCheckpoint>
  try {
    opened = openCheckpoint(d.checkpoint, verifiers)
  } catch (err) {
    throw new ProvenExportError(`checkpoint: ${(err as Error).message}`)
  }
  const { checkpoint } = opened
  for (const [i, r] of d.records.entries()) {
    const where = `record ${i + 1}`
    if (
      !r ||
      !Number.isSafeInteger(r.seq) ||
      typeof r.line !== 'string' ||
      !Array.isArray(r.inclusion_proof)
    ) {
      throw new ProvenExportError(`${where}: needs seq, line and inclusion_proof`)
    }
    let lineSeq: unknown
    try {
      lineSeq = (JSON.parse(r.line) as { seq?: unknown }).seq
    } catch {
      throw new ProvenExportError(`${where}: line is not JSON`)
    }
    if (lineSeq !== r.seq)
      throw new ProvenExportError(`${where}: line has seq ${String(lineSeq)}, not ${r.seq}`)
    try {
      verifyInclusion(
        r.seq - 1,
        checkpoint.size,
        leafHash(Buffer.from(r.line, 'utf8')),
        r.inclusion_proof.map((h: unknown) => Buffer.from(String(h), 'base64')),
        checkpoint.rootHash,
      )
    } catch (err) {
      if (err instanceof ProofError) throw new ProvenExportError(`${where} (seq ${r.seq}): ${err.message}`)
      throw err
    }
  }
  return { origin: checkpoint.origin, size: checkpoint.size, records: d.records.length }
}

/**
 * Verifier keys from `--public-key` values: each is a verifier key itself or a file holding one key per line.
 *
 * @example
 * const verifiers = loadVerifierKeys(['/etc/care/log.vkey'])
 */
export function loadVerifierKeys(values: readonly string[]): NoteVerifier[] {
  return values.flatMap((value) => {
    const text = existsSync(value) ? readFileSync(value, 'utf8') : value
    return text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => parseVerifierKey(line))
  })
}
