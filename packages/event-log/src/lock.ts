import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { LogLockedError } from './errors.js'
import { errnoOf, type LogFileSystem, readFully, readWholeFile, writeFully } from './file-system.js'

/** Contents of `<dataDir>/LOCK`. */
export interface LockInfo {
  pid: number
  hostname: string
  started_at: string
  /** Random per acquisition, so two holders with the same pid and start time are still told apart. */
  nonce?: string
}

export interface HeldLock {
  path: string
  /** The stale lock this process replaced, if any. */
  tookOver: LockInfo | undefined
  release(): Promise<void>
}

// A lock file that exists but does not parse is a writer that crashed (or is) between create and write;
// after this long nobody is still writing it.
const UNREADABLE_LOCK_GRACE_MS = 10_000

type WarnLogger = { warn(o: object, m: string): void }

// LOCK files this process holds now. A LOCK naming this process's own pid that is not one of them was
// left by an earlier process that happened to get the same pid, e.g. pid 1 in a restarted container.
const heldByThisProcess = new Set<string>()
/** How long a process that replaced a stale LOCK waits before checking it still holds it. */
const TAKEOVER_SETTLE_MS = 100

/** Takes `<dataDir>/LOCK` with O_EXCL; replaces it only when its owner is provably dead. */
export async function acquireLock(
  fs: LogFileSystem,
  dataDir: string,
  logger?: WarnLogger,
): Promise<HeldLock> {
  const path = join(dataDir, 'LOCK')
  const mine: LockInfo = {
    pid: process.pid,
    hostname: hostname(),
    started_at: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  }
  const text = `${JSON.stringify(mine)}\n`
  let tookOver: LockInfo | undefined
  let replacedAnother = false
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(path, 'createExclusive')
      try {
        // No fsync: after a crash the lock is stale anyway, and the pid check handles that.
        await writeFully(handle, Buffer.from(text), 0)
      } finally {
        await handle.close()
      }
      // Claimed from here on (also while confirming), so a LOCK naming our pid is not mistaken for an
      // earlier incarnation's.
      heldByThisProcess.add(resolve(path))
      if (replacedAnother) {
        try {
          await confirmStillOurs(fs, path, mine)
        } catch (err) {
          // The winner may be another EventLog of this very process: then the path stays claimed.
          if (!(err instanceof LogLockedError && err.pid === process.pid))
            heldByThisProcess.delete(resolve(path))
          throw err
        }
      }
      return { path, tookOver, release: () => releaseLock(fs, path, text) }
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err
    }
    const holder = await readLock(fs, path)
    if (holder === 'missing') continue
    if (holder === 'unreadable') {
      const age = Date.now() - (await fs.stat(path)).mtimeMs
      if (age < UNREADABLE_LOCK_GRACE_MS) {
        throw new LogLockedError(path, undefined, undefined, 'another process is creating it right now')
      }
      logger?.warn({ lock: path }, 'event log lock file is unreadable and old; taking it over')
    } else {
      if (holder.hostname !== mine.hostname) {
        throw new LogLockedError(
          path,
          holder.pid,
          holder.hostname,
          `held by pid ${holder.pid} on host ${holder.hostname} (cannot check that host; remove LOCK if it is gone)`,
        )
      }
      const earlierIncarnation = holder.pid === process.pid && !heldByThisProcess.has(resolve(path))
      if (isAlive(holder.pid) && !earlierIncarnation) {
        throw new LogLockedError(path, holder.pid, holder.hostname, `held by running pid ${holder.pid}`)
      }
      logger?.warn(
        { lock: path, stale: holder },
        `event log lock held by dead pid ${holder.pid}; taking it over`,
      )
      tookOver = holder
      // Only remove it if it is still the stale lock we judged: another process may have replaced
      // it with its own since we read it. (If so, the next attempt sees a live holder and stops.)
      const again = await readLock(fs, path)
      if (typeof again !== 'object' || !sameLock(again, holder)) continue
    }
    replacedAnother = true
    try {
      await fs.unlink(path)
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err
    }
  }
  throw new LogLockedError(path, undefined, undefined, 'lost the race for it three times')
}

/**
 * Two processes can both judge the same LOCK stale, and the slower one's unlink can remove the
 * faster one's fresh LOCK. Whoever replaced a LOCK therefore looks again after a moment: if the
 * file is no longer ours, someone else won the takeover and we must not write.
 */
async function confirmStillOurs(fs: LogFileSystem, path: string, mine: LockInfo): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, TAKEOVER_SETTLE_MS))
  const now = await readLock(fs, path)
  if (typeof now === 'object' && sameLock(now, mine)) return
  const other = typeof now === 'object' ? now : undefined
  throw new LogLockedError(
    path,
    other?.pid,
    other?.hostname,
    'another process took over the same stale lock at the same moment',
  )
}

function sameLock(a: LockInfo, b: LockInfo): boolean {
  return a.pid === b.pid && a.hostname === b.hostname && a.started_at === b.started_at && a.nonce === b.nonce
}

async function readLock(fs: LogFileSystem, path: string): Promise<LockInfo | 'missing' | 'unreadable'> {
  const bytes = await readWholeFile(fs, path, 4096)
  if (bytes === undefined) return 'missing'
  const text = bytes.toString('utf8')
  try {
    const info = JSON.parse(text) as Partial<LockInfo>
    if (Number.isSafeInteger(info.pid) && typeof info.hostname === 'string') return info as LockInfo
  } catch {
    // fall through
  }
  return 'unreadable'
}

async function releaseLock(fs: LogFileSystem, path: string, mine: string): Promise<void> {
  // Once released the lock is no longer claimed by this process, even if removing the file fails.
  heldByThisProcess.delete(resolve(path))
  try {
    const handle = await fs.open(path, 'read')
    let text: string
    try {
      text = (await readFully(handle, 4096, 0)).toString('utf8')
    } finally {
      await handle.close()
    }
    // Never remove a lock another process took over (e.g. after an operator deleted ours).
    if (text === mine) await fs.unlink(path)
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return errnoOf(err) === 'EPERM'
  }
}
