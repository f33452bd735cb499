import { parseCheckpoint, parseNote, verifyConsistency, verifyInclusion } from '@care/tlog'
import type { Hono, MiddlewareHandler } from 'hono'
import { SESSION_ID_PATTERN } from '../audit/export-filters.js'
import { sendError } from '../http/errors.js'
import type { SessionManagerEnv } from '../http/http-env.js'
import { StoreUnavailableError } from '../store/event-store.js'
import { TreeFilesError } from './export-proofs.js'
import { buildProvenExport } from './proven-export.js'
import type { TransparencyLog } from './transparency-log.js'

const SESSION_ID = new RegExp(SESSION_ID_PATTERN)

/**
 * Adds the transparency endpoints (all behind `auditor`): `GET /checkpoint` (the newest signed
 * checkpoint, `text/plain`), `GET /proofs/inclusion?seq=&size=`, `GET /proofs/consistency?from=&to=`
 * (`size`/`to` default to the newest checkpoint's size, or to the live tree size before the first
 * checkpoint) and `GET /proofs/export?session_id=` (a
 * `ProvenExport` of one session against the newest checkpoint), for either store. Proofs at the current
 * size or the newest checkpoint's are checked against that root (the in-memory tree's, the signed one)
 * before they are served; stored hashes that are missing, damaged or unreachable answer 503. Without a
 * transparency log (turned off, or the PostgreSQL store without a checkpoint key) they answer 404.
 *
 * @example
 * registerTransparencyRoutes(app, { transparency: () => tlog, dataDir, auditor })
 */
export function registerTransparencyRoutes(
  app: Hono<SessionManagerEnv>,
  options: {
    transparency: () => TransparencyLog | undefined
    dataDir: string
    auditor: MiddlewareHandler<SessionManagerEnv>
    /** Where a 503 for unreadable or mismatching stored hashes is logged (what it maps, and why). */
    logger?: { error(o: object, m: string): void; warn?(o: object, m: string): void }
  },
): void {
  const { auditor } = options
  const readHashes = async <T>(read: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> => {
    try {
      return { ok: true, value: await read() }
    } catch (err) {
      if (!isUnreadableHashes(err)) throw err
      const log = options.logger?.warn?.bind(options.logger) ?? options.logger?.error.bind(options.logger)
      log?.({ err }, "transparency: the tree's stored hashes could not be read or do not match; answered 503")
      return { ok: false }
    }
  }
  const withLog: MiddlewareHandler<SessionManagerEnv> = async function requireTransparency(c, next) {
    if (!options.transparency()) {
      return sendError(c, 'not_found', {
        message: 'This store keeps no Merkle tree (or it is still recovering).',
      })
    }
    await next()
  }
  const tlog = () => options.transparency()!
  /**
   * The root the log vouches for at `size` without reading stored hashes: the in-memory tree's at the
   * current size, the newest signed checkpoint's at its size; undefined for other sizes.
   */
  const trustedRoot = (size: number): Buffer | undefined => {
    const log = tlog()
    if (size === log.size) return log.tree.root()
    const latest = log.latestCheckpoint
    if (latest?.size === size) return parseCheckpoint(parseNote(latest.note).text).rootHash
    return undefined
  }
  /** Checks a proof read from stored hashes against `trustedRoot` (where there is one). */
  const checked = async <T>(read: () => Promise<T>, check: (value: T) => void): Promise<T> => {
    const value = await read()
    try {
      check(value)
    } catch (err) {
      // A damaged stored hash (perhaps kept from an earlier read): the next proof reads them again.
      tlog().proofs.forget()
      throw new TreeFilesError(
        `a proof from the stored hashes does not give the trusted root: ${(err as Error).message}`,
      )
    }
    return value
  }
  const badQuery = (c: Parameters<MiddlewareHandler>[0], message: string) =>
    sendError(c, 'validation_failed', { fields: [{ path: '/query', message }] })
  const defaultSize = () => tlog().latestCheckpoint?.size ?? tlog().size

  app.get('/checkpoint', auditor, withLog, (c) => {
    const latest = tlog().latestCheckpoint
    if (!latest) return sendError(c, 'not_found', { message: 'No checkpoint has been signed yet.' })
    c.header('Cache-Control', 'no-store')
    return c.text(latest.note, 200, { 'Content-Type': 'text/plain; charset=utf-8' })
  })

  app.get('/proofs/inclusion', auditor, withLog, async (c) => {
    const size = orDefault(integer(c.req.query('size')), defaultSize)
    const seq = integer(c.req.query('seq'))
    if (seq === null || seq === undefined) return badQuery(c, 'seq must be a positive integer')
    if (size === null || size < 1 || size > tlog().size) {
      return badQuery(c, `size must be an integer in [1, ${tlog().size}]`)
    }
    if (seq < 1 || seq > size) return badQuery(c, `seq must be in [1, ${size}]`)
    const read = await readHashes(() =>
      checked(
        () => tlog().proofs.inclusion(seq - 1, size),
        ({ leafHash, root, proof }) => {
          const trusted = trustedRoot(size)
          if (trusted === undefined) return
          if (!trusted.equals(root)) throw new Error(`root at ${size} differs`)
          verifyInclusion(seq - 1, size, leafHash, proof, trusted)
        },
      ),
    )
    if (!read.ok) return unreadable(c)
    const { leafHash, root, proof } = read.value
    return c.json({
      seq,
      leaf_index: seq - 1,
      tree_size: size,
      leaf_hash: leafHash.toString('base64'),
      root_hash: root.toString('base64'),
      inclusion_proof: proof.map((h) => h.toString('base64')),
    })
  })

  app.get('/proofs/consistency', auditor, withLog, async (c) => {
    const from = integer(c.req.query('from'))
    const to = orDefault(integer(c.req.query('to')), defaultSize)
    if (from === null || from === undefined) return badQuery(c, 'from must be a positive integer')
    if (to === null || to < 1 || to > tlog().size)
      return badQuery(c, `to must be an integer in [1, ${tlog().size}]`)
    if (from < 1 || from > to) return badQuery(c, `from must be in [1, ${to}]`)
    const read = await readHashes(() =>
      checked(
        () => tlog().proofs.consistency(from, to),
        ({ root1, root2, proof }) => {
          const trusted1 = trustedRoot(from)
          const trusted2 = trustedRoot(to)
          if (trusted1 !== undefined && !trusted1.equals(root1)) throw new Error(`root at ${from} differs`)
          if (trusted2 !== undefined) {
            if (!trusted2.equals(root2)) throw new Error(`root at ${to} differs`)
            verifyConsistency(from, to, proof, root1, trusted2)
          }
        },
      ),
    )
    if (!read.ok) return unreadable(c)
    const { root1, root2, proof } = read.value
    return c.json({
      from,
      to,
      from_root: root1.toString('base64'),
      to_root: root2.toString('base64'),
      consistency_proof: proof.map((h) => h.toString('base64')),
    })
  })

  app.get('/proofs/export', auditor, withLog, async (c) => {
    const sessionId = c.req.query('session_id')
    if (!sessionId) return sendError(c, 'session_id_missing')
    if (!SESSION_ID.test(sessionId)) return sendError(c, 'session_id_invalid')
    const read = await readHashes(() =>
      buildProvenExport(tlog(), (record) => record.session_id === sessionId),
    )
    if (!read.ok) return unreadable(c)
    const doc = read.value
    if (!doc) return sendError(c, 'not_found', { message: 'No checkpoint has been signed yet.' })
    if (doc.records.length === 0) return sendError(c, 'session_not_found')
    return c.json(doc)
  })
}

/**
 * The errors a read of the stored hashes may meet for a reason outside the request (they answer 503):
 * a hash missing from the table (`RangeError`; derived data can be deleted), hashes that do not give
 * the signed root (`TreeFilesError`), the database unreachable (`StoreUnavailableError`). Anything else
 * is a bug and reaches the error handler.
 */
function isUnreadableHashes(err: unknown): boolean {
  return err instanceof RangeError || err instanceof TreeFilesError || err instanceof StoreUnavailableError
}

function unreadable(c: Parameters<MiddlewareHandler>[0]): Response {
  return sendError(c, 'upstream_unavailable', {
    message:
      "The tree's stored hashes could not be read, or do not match the signed checkpoint; try again later. A start of the service finds and rewrites missing hashes.",
  })
}

/** undefined when absent, null when present but not a decimal integer. */
function integer(value: string | undefined): number | undefined | null {
  if (value === undefined) return undefined
  return /^\d{1,15}$/.test(value) ? Number(value) : null
}

function orDefault(value: number | undefined | null, fallback: () => number): number | null {
  return value === undefined ? fallback() : value
}
