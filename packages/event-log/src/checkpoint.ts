import { join } from 'node:path'
import { errnoOf, type LogFileSystem, readWholeFile, writeFully } from './file-system.js'

/**
 * `<dataDir>/events/checkpoint.json`: the last record of a sealed segment, written (atomically, fsynced)
 * at every rotation. Records up to it were fully hash-verified when written and are only parsed and
 * chain-linked on recovery; `verifyLog` still re-hashes everything.
 */
export interface Checkpoint {
  seq: number
  hash: string
  /** Segment index holding record `seq`; `offset` is the end of that record's line (its file size). */
  file: number
  offset: number
}

export const CHECKPOINT_FILE = 'checkpoint.json'

export async function readCheckpoint(fs: LogFileSystem, eventsDir: string): Promise<Checkpoint | undefined> {
  const bytes = await readWholeFile(fs, join(eventsDir, CHECKPOINT_FILE), 4096)
  if (bytes === undefined) return undefined
  const text = bytes.toString('utf8')
  try {
    const value = JSON.parse(text) as Partial<Checkpoint>
    const ints = [value.seq, value.file, value.offset].every(
      (n) => Number.isSafeInteger(n) && (n as number) >= 0,
    )
    if (ints && typeof value.hash === 'string' && value.hash.length === 64) return value as Checkpoint
  } catch {
    // An unreadable checkpoint only costs speed: recovery then hashes every line.
  }
  return undefined
}

/** Write-to-temp, fsync, rename, fsync dir: a crash leaves the old or the new checkpoint, never half. */
export async function writeCheckpoint(
  fs: LogFileSystem,
  eventsDir: string,
  checkpoint: Checkpoint,
): Promise<void> {
  const target = join(eventsDir, CHECKPOINT_FILE)
  const temp = `${target}.tmp`
  const handle = await fs.open(temp, 'write')
  try {
    await handle.truncate(0)
    await writeFully(handle, Buffer.from(`${JSON.stringify(checkpoint)}\n`), 0)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, target)
  await fs.syncDir(eventsDir)
}

export async function removeCheckpoint(fs: LogFileSystem, eventsDir: string): Promise<void> {
  try {
    await fs.unlink(join(eventsDir, CHECKPOINT_FILE))
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err
  }
}
