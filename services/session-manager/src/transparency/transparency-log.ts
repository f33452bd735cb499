import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { type LogFileSystem, nodeFileSystem, readWholeFile } from '@care/event-log'
import {
  type AsyncNodeReader,
  asyncNodeReader,
  CompactRange,
  FileNodeStore,
  leafHash,
  MerkleTree,
  type NodeStore,
  type NoteSigner,
  type NoteVerifier,
  openCheckpoint,
  signCheckpoint,
  TreeProofs,
} from '@care/tlog'
import { CheckpointPublisher } from './checkpoint-publisher.js'
import { logLines } from './log-lines.js'

/** Subdirectory of the data dir holding the signed checkpoints. */
export const CHECKPOINTS_DIR = 'checkpoints'
/** Subdirectory of the data dir holding the Merkle tree's level files (derived data). */
export const TREE_DIR = 'tree'
const CHECKPOINT_FILE = /^(\d{20})\.checkpoint$/

/** The file name of the checkpoint for `size` leaves: the size zero-padded to 20 digits. */
export function checkpointFileName(size: number): string {
  return `${String(size).padStart(20, '0')}.checkpoint`
}

/**
 * The signed checkpoint files in `dir`, oldest (smallest size) first.
 *
 * @example
 * const newest = listCheckpointFiles(join(dataDir, 'checkpoints')).at(-1)
 */
export function listCheckpointFiles(dir: string): { size: number; path: string }[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return []
    throw err
  }
  return checkpointFilesIn(dir, names)
}

function checkpointFilesIn(dir: string, names: readonly string[]): { size: number; path: string }[] {
  return names
    .map((name) => ({ name, match: CHECKPOINT_FILE.exec(name) }))
    .filter((f) => f.match !== null)
    .map((f) => ({ size: Number(f.match![1]), path: join(dir, f.name) }))
    .sort((a, b) => a.size - b.size)
}

/**
 * A tree's node store as `TreeStorage` opens it: a `NodeStore`, optionally with `sync` (fsync at a clean
 * shutdown) and `readNodes` (an asynchronous read of many stored hashes at once, for stores whose
 * hashes are not all in memory, such as the PostgreSQL table; without it proofs read `node`) and
 * `forget` (drops hashes it kept from earlier reads, after a proof from them failed a check).
 *
 * @example
 * const store: OpenedTreeStore = FileNodeStore.open(dir)
 */
export type OpenedTreeStore = NodeStore & {
  sync?(): void
  readNodes?: AsyncNodeReader['readNodes']
  forget?(): void
}

/**
 * Where the tree's complete-subtree hashes live (derived data): `open` the store in a directory, `remove`
 * it for a rebuild. The default is `FileNodeStore` (`tree/level-NN.hashes`); tests inject stores that
 * lose unflushed or unsynced hashes in a simulated crash.
 *
 * @example
 * const storage: TreeStorage = { open: (dir) => FileNodeStore.open(dir), remove: (dir) => FileNodeStore.remove(dir) }
 */
export interface TreeStorage {
  open(dir: string): OpenedTreeStore
  remove(dir: string): void
}

const fileTreeStorage: TreeStorage = {
  open: (dir) => FileNodeStore.open(dir),
  remove: (dir) => FileNodeStore.remove(dir),
}

/**
 * Options of `TransparencyLog.open`.
 *
 * @example
 * const options: TransparencyLogOptions = { dataDir, signer, everyRecords: 1000, intervalMs: 10_000, logger }
 */
export interface TransparencyLogOptions {
  dataDir: string
  /** Signs checkpoints; without it the tree is kept (proofs work) but no checkpoint is written. */
  signer?: NoteSigner
  /** Verifies this log's own earlier checkpoints at start (defaults to the signer's public key). */
  verifier?: NoteVerifier
  /** Write a checkpoint once this many records arrived since the last one (default 1000). */
  everyRecords?: number
  /** Write a checkpoint at most this long after a record arrived (default 10 s). */
  intervalMs?: number
  /** POST each new checkpoint here (retried in the background, never blocking appends). */
  publishUrl?: string
  /** The file layer for checkpoints and for re-reading the log in a rebuild (default: node:fs). */
  fs?: LogFileSystem
  /** Where the tree's hashes live (default: files in `<dataDir>/tree/`). */
  treeStorage?: TreeStorage
  /**
   * The store's leaves from the first, for a rebuild and for proven exports (default: the log lines
   * under `dataDir`, `logLines`). The PostgreSQL store passes its rows' tree lines.
   */
  leaves?: () => AsyncIterable<Buffer>
  /**
   * The log's replay starts after record `size` (a snapshot): the stored tree is trusted up to `size` if
   * its root there is `root` (hex, stored in the snapshot), and only the replayed tail is hashed. Without
   * a matching root the tree is rebuilt from the log files (slower, never wrong).
   */
  replayStartsAfter?: { size: number; root?: string }
  logger?: {
    info(o: object, m: string): void
    warn(o: object, m: string): void
    error(o: object, m: string): void
  }
}

const silent = { info() {}, warn() {}, error() {} }

/**
 * The session log as a transparency log: an RFC 6962 Merkle tree over the exact bytes of each log line
 * (without its newline), fed by a `LogObserver` (recovered lines at open, then each group of durable
 * appends), with signed C2SP checkpoints written to `<dataDir>/checkpoints/` every N records, every T
 * ms while records arrive, when the log seals a segment, and at close. Appends only reach the tree after their fdatasync, so a
 * checkpoint never covers a record that is not durable. The tree's level files in `<dataDir>/tree/` are
 * derived: at open they are checked against the replayed log and rebuilt when they disagree.
 *
 * @example
 * const tlog = TransparencyLog.open({ dataDir, signer })
 * const store = await FileEventStore.open({ dir: dataDir, observer: tlog.observer }, apply)
 * await tlog.finishRecovery(store.head().seq)
 */
export class TransparencyLog {
  readonly #dataDir: string
  readonly #signer: NoteSigner | undefined
  readonly #verifier: NoteVerifier | undefined
  readonly #everyRecords: number
  readonly #intervalMs: number
  readonly #logger: NonNullable<TransparencyLogOptions['logger']>
  readonly #fs: LogFileSystem
  readonly #storage: TreeStorage
  readonly #leaves: () => AsyncIterable<Buffer>
  #opened: { store: OpenedTreeStore; tree: MerkleTree; proofs: TreeProofs } | undefined
  #replay = new CompactRange()
  #prefixMatches: boolean
  #storedAtOpen = 0
  /** Leaves before the first replayed line (a snapshot's size), 0 for a full replay. */
  #replayBase = 0
  readonly #replayStartsAfter: { size: number; root?: string } | undefined
  #recovering = true
  #sinceCheckpoint = 0
  #timer: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()
  #latest: { size: number; note: string } | undefined
  #signingDisabled: string | undefined
  #closed = false
  readonly #publisher: CheckpointPublisher | undefined

  private constructor(options: TransparencyLogOptions) {
    this.#dataDir = options.dataDir
    this.#signer = options.signer
    this.#verifier = options.verifier
    this.#everyRecords = options.everyRecords ?? 1000
    this.#intervalMs = options.intervalMs ?? 10_000
    this.#logger = options.logger ?? silent
    this.#fs = options.fs ?? nodeFileSystem
    this.#storage = options.treeStorage ?? fileTreeStorage
    this.#leaves = options.leaves ?? (() => logLines(this.#dataDir, this.#fs))
    if (options.publishUrl) this.#publisher = new CheckpointPublisher(options.publishUrl, this.#logger)
    this.#prefixMatches = false
    this.#replayStartsAfter = options.replayStartsAfter
  }

  // Opened on first use: that is inside the log's recovery, i.e. under the data dir's lock.
  #open(): { store: OpenedTreeStore; tree: MerkleTree; proofs: TreeProofs } {
    if (this.#opened) return this.#opened
    this.#opened = opened(this.#storage.open(join(this.#dataDir, TREE_DIR)))
    this.#storedAtOpen = this.#opened.tree.size
    this.#prefixMatches = this.#storedAtOpen === 0
    const resume = this.#replayStartsAfter
    if (resume && resume.size > 0) this.#trustUpTo(this.#opened.tree, resume.size, resume.root)
    return this.#opened
  }

  /** Replay starts after leaf `size`: keep the stored tree's first `size` leaves if its root there is `root`. */
  #trustUpTo(tree: MerkleTree, size: number, root: string | undefined): void {
    this.#replayBase = size
    const trusted = root !== undefined && tree.size >= size && tree.root(size).toString('hex') === root
    if (trusted) {
      if (tree.size > size) tree.truncate(size)
      this.#storedAtOpen = size
      this.#prefixMatches = true
      return
    }
    this.#prefixMatches = false
    this.#logger.warn(
      { stored: tree.size, snapshot_size: size },
      'transparency: tree files do not match the snapshot; they will be rebuilt from the log',
    )
  }

  /**
   * Size and root hash (hex) of the tree's first `size` leaves, or undefined while the tree is shorter
   * (what a snapshot taken at record `size` stores).
   *
   * @example
   * const tree = tlog.rootAt(log.resumePoint.seq) // { size, root }
   */
  rootAt(size: number): { size: number; root: string } | undefined {
    if (this.#recovering || this.#tree.size < size) return undefined
    return { size, root: this.#tree.root(size).toString('hex') }
  }

  get #tree(): MerkleTree {
    return this.#open().tree
  }

  get #store(): OpenedTreeStore {
    return this.#open().store
  }

  /**
   * Opens the tree under `dataDir` (before the log is opened: pass `observer` to the log).
   *
   * @example
   * const tlog = TransparencyLog.open({ dataDir: '/var/lib/care', signer: parseSignerKey(skey) })
   */
  static open(options: TransparencyLogOptions): TransparencyLog {
    return new TransparencyLog(options)
  }

  /** The hooks to hand to the event log (`OpenLogOptions.observer`). */
  readonly observer = {
    recovered: (line: Buffer): void => this.#recovered(line),
    durable: (lines: readonly Buffer[]): void => this.#appended(lines),
    sealed: (): void => {
      if (!this.#recovering && !this.#closed) void this.checkpoint()
    },
  }

  /** Number of leaves (records) in the tree. */
  get size(): number {
    return this.#tree.size
  }

  /** The store's leaves (the exact bytes each leaf hashes), from the first, read afresh. */
  leaves(): AsyncIterable<Buffer> {
    return this.#leaves()
  }

  /**
   * The tree: its size and current root (in memory). Its synchronous proofs and earlier roots need every
   * hash in reach (the embedded store's files); use `proofs` and `treeRoot`, which work for every store.
   */
  get tree(): MerkleTree {
    return this.#tree
  }

  /**
   * Inclusion and consistency proofs and earlier roots (sizes up to `size`), read from the tree's stored
   * hashes asynchronously: the level files of the embedded log, the `tree_nodes` table of the
   * PostgreSQL store (one query per proof). Byte-identical to the `tree`'s synchronous proofs.
   *
   * @example
   * const { leafHash, root, proof } = await tlog.proofs.inclusion(seq - 1, size)
   */
  get proofs(): TreeProofs {
    return this.#open().proofs
  }

  /**
   * The tree's root at `size` (at most `size`): from memory at the current size, else from the stored hashes.
   *
   * @example
   * const root = await tlog.treeRoot(checkpoint.size)
   */
  async treeRoot(size: number): Promise<Buffer> {
    return size === this.#tree.size ? this.#tree.root() : this.proofs.root(size)
  }

  /** The newest signed checkpoint (note text), if any was written or found. */
  get latestCheckpoint(): { size: number; note: string } | undefined {
    return this.#latest
  }

  /** Delivery counters of `publishUrl` (undefined without one). */
  get publishStatus(): CheckpointPublisher['status'] | undefined {
    return this.#publisher?.status
  }

  /** Why checkpoints are no longer signed (the log no longer matches one this key signed), if so. */
  get signingDisabled(): string | undefined {
    return this.#signingDisabled
  }

  #recovered(line: Buffer): void {
    this.#open()
    const hash = leafHash(line)
    this.#replay.appendLeafHash(hash)
    const n = this.#replayBase + this.#replay.size
    // The stored tree is trusted only if its root at its own size is the replayed log's root there.
    if (this.#replayBase === 0 && n === this.#storedAtOpen)
      this.#prefixMatches = this.#replay.root().equals(this.#tree.root())
    else if (n > this.#storedAtOpen && this.#prefixMatches) this.#tree.appendLeafHash(hash)
  }

  /**
   * Ends recovery once the log is open: reconciles the stored tree with the `records` the log kept
   * (rebuilding it from the log files when they disagree), checks the newest checkpoint on disk against
   * the tree (a log that lost or changed signed records stops signing and says so), and signs a
   * checkpoint when the tree grew since.
   *
   * @example
   * await tlog.finishRecovery(store.head().seq)
   */
  async finishRecovery(records: number): Promise<void> {
    this.#open()
    const replayed = this.#replayBase + this.#replay.size
    let consistent = replayed === records && this.#prefixMatches
    if (replayed === records && this.#storedAtOpen > replayed && this.#replayBase === 0) {
      // The tree files are ahead of the log (its tail was cut): keep them if they agree up to there.
      consistent = this.#tree.root(replayed).equals(this.#replay.root())
      if (consistent) this.#tree.truncate(replayed)
    }
    if (!consistent || this.#tree.size !== records) {
      this.#logger.warn(
        { stored: this.#storedAtOpen, records },
        'transparency: tree files disagree with the log; rebuilding them',
      )
      await this.#rebuild(records)
    }
    this.#recovering = false
    this.#replay = new CompactRange()
    await this.#prepareCheckpointsDir()
    await this.#loadLatest()
    if (this.#tree.size > (this.#latest?.size ?? 0)) await this.checkpoint()
  }

  async #prepareCheckpointsDir(): Promise<void> {
    const checkpointsDir = join(this.#dataDir, CHECKPOINTS_DIR)
    await this.#fs.mkdir(checkpointsDir)
    await this.#fs.syncDir(this.#dataDir)
    // A crash between writing a checkpoint's temporary file and its rename leaves the temporary file.
    for (const name of await this.#fs.readdir(checkpointsDir)) {
      if (name.includes('.checkpoint.tmp-')) await this.#fs.unlink(join(checkpointsDir, name))
    }
  }

  async #rebuild(records: number): Promise<void> {
    this.#store.close()
    this.#storage.remove(join(this.#dataDir, TREE_DIR))
    this.#opened = opened(this.#storage.open(join(this.#dataDir, TREE_DIR)))
    for await (const line of this.#leaves()) {
      if (this.#tree.size === records) break
      this.#tree.append(line)
    }
    this.#store.flush()
  }

  async #loadLatest(): Promise<void> {
    const dir = join(this.#dataDir, CHECKPOINTS_DIR)
    const newest = checkpointFilesIn(dir, await this.#fs.readdir(dir)).at(-1)
    if (!newest) return
    const note = await readText(this.#fs, newest.path)
    if (note === undefined) return
    const verifier = this.#verifier
    if (verifier === undefined) {
      this.#latest = { size: newest.size, note }
      return
    }
    let checkpoint: ReturnType<typeof openCheckpoint>['checkpoint']
    try {
      ;({ checkpoint } = openCheckpoint(note, [verifier], verifier.name))
    } catch (err) {
      this.#logger.warn(
        { err, file: newest.path },
        'transparency: newest checkpoint is not signed by this key; ignored',
      )
      return
    }
    if (checkpoint.size > this.#tree.size) {
      this.#disableSigning(
        `the log has ${this.#tree.size} records but checkpoint ${newest.path} signed ${checkpoint.size}`,
      )
    } else if (!(await this.treeRoot(checkpoint.size)).equals(checkpoint.rootHash)) {
      this.#disableSigning(
        `the log's first ${checkpoint.size} records do not match checkpoint ${newest.path}`,
      )
    }
    this.#latest = { size: checkpoint.size, note }
  }

  #disableSigning(reason: string): void {
    this.#signingDisabled = reason
    this.#logger.error(
      { reason },
      'transparency: the log is inconsistent with a checkpoint it signed; no more checkpoints are signed',
    )
  }

  #appended(lines: readonly Buffer[]): void {
    if (this.#recovering || this.#closed) return
    for (const line of lines) this.#tree.appendLeafHash(leafHash(line))
    this.#sinceCheckpoint += lines.length
    if (this.#sinceCheckpoint >= this.#everyRecords) void this.checkpoint()
    else if (this.#timer === undefined && this.#signer) {
      this.#timer = setTimeout(() => void this.checkpoint(), this.#intervalMs)
      this.#timer.unref()
    }
  }

  /**
   * Signs and writes a checkpoint for the current tree size now (no-op without a signer, when signing
   * is disabled, or when the size did not change). Writes one at a time: temp file, fsync, rename.
   *
   * @example
   * await tlog.checkpoint()
   */
  checkpoint(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#sinceCheckpoint = 0
    const size = this.#tree.size
    const root = this.#tree.root()
    this.#writing = this.#writing.then(() => this.#write(size, root))
    return this.#writing
  }

  async #write(size: number, rootHash: Buffer): Promise<void> {
    const signer = this.#signer
    if (!signer || this.#signingDisabled !== undefined) return
    if (this.#latest !== undefined && this.#latest.size >= size) return
    try {
      this.#store.flush()
      const path = join(this.#dataDir, CHECKPOINTS_DIR, checkpointFileName(size))
      const existing = await readText(this.#fs, path)
      // After a key rotation the same tree head may already be signed by the previous key: keep it.
      if (existing !== undefined && sameTreeHead(existing, signer.name, size, rootHash)) {
        this.#latest = { size, note: existing }
        return
      }
      const note = signCheckpoint({ origin: signer.name, size, rootHash }, [signer])
      await writeFileDurably(this.#fs, path, note)
      this.#latest = { size, note }
      this.#publisher?.publish(note)
    } catch (err) {
      this.#logger.error(
        { err, size },
        'transparency: could not write a checkpoint; will retry with the next one',
      )
    }
  }

  /** Writes a final checkpoint, then flushes and closes the tree files. */
  async close(): Promise<void> {
    if (this.#closed) return
    if (!this.#recovering) await this.checkpoint()
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#writing
    this.#publisher?.close()
    this.#opened?.store.sync?.()
    this.#opened?.store.close()
  }
}

/** A store opened for the tree: the tree over it and its asynchronous proofs. */
function opened(store: OpenedTreeStore): { store: OpenedTreeStore; tree: MerkleTree; proofs: TreeProofs } {
  const reader: AsyncNodeReader = store.readNodes
    ? { readNodes: store.readNodes.bind(store), forget: () => store.forget?.() }
    : asyncNodeReader(store)
  return { store, tree: new MerkleTree(store), proofs: new TreeProofs(reader) }
}

/**
 * `path` replaced atomically without blocking the event loop: temporary file, fdatasync, rename over the
 * target, fsync of the directory. A crash leaves the old file or the new one (plus at most a
 * `.tmp-` file, removed at the next start).
 */
async function writeFileDurably(fs: LogFileSystem, path: string, data: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`
  const bytes = Buffer.from(data, 'utf8')
  const file = await fs.open(temp, 'createExclusive')
  try {
    let done = 0
    while (done < bytes.length) done += await file.write(bytes, done, bytes.length - done, done)
    await file.datasync()
  } finally {
    await file.close()
  }
  await fs.rename(temp, path)
  await fs.syncDir(join(path, '..'))
}

/** The whole file as UTF-8, or undefined when it does not exist. */
async function readText(fs: LogFileSystem, path: string): Promise<string | undefined> {
  return (await readWholeFile(fs, path))?.toString('utf8')
}

function sameTreeHead(note: string, origin: string, size: number, rootHash: Buffer): boolean {
  return note.startsWith(`${origin}\n${size}\n${rootHash.toString('base64')}\n\n`)
}
