import type { LogFileSystem } from '@care/event-log'
import { PowerLossFileSystem } from '@care/event-log/testing'
import { createSessionManagerApp } from '../../app.js'
import { loadConfig } from '../../config.js'
import { createIdFactory } from '../../ids/id-factory.js'
import { type Clock, SessionLifecycleService, type SessionPolicy } from '../../sessions/session-lifecycle.js'
import { type EmbeddedStore, openEmbeddedStore, type SnapshotCadence } from '../../store/embedded-store.js'
import type { FileEventStore } from '../../store/file-event-store.js'

export const CALLER_TOKEN = 'caller-token-0123456789'
export const AUDITOR_TOKEN = 'auditor-token-0123456789'

/** Every log line the service wrote, as `{ level, msg, ...fields }`. */
export interface CapturedLine {
  level: 'info' | 'warn' | 'error'
  msg: string
  [field: string]: unknown
}

export function captureLogger(lines: CapturedLine[] = []) {
  const at =
    (level: CapturedLine['level']) =>
    (o: object, msg: string): void => {
      lines.push({ ...(o as Record<string, unknown>), level, msg })
    }
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

export interface BootOptions {
  fs: LogFileSystem
  dir: string
  clock?: Clock
  policy?: Partial<SessionPolicy>
  maxFileBytes?: number
  /** Require bearer tokens (CALLER_TOKEN, AUDITOR_TOKEN); default: loopback without tokens. */
  tokens?: boolean
  lines?: CapturedLine[]
  /** Snapshots of the hot state (default: off, every start replays the whole log). */
  snapshots?: SnapshotCadence
}

export interface BootedService {
  service: SessionLifecycleService
  store: FileEventStore
  /** The embedded store as opened (snapshot writer, what the start did). */
  embedded: EmbeddedStore
  app: ReturnType<typeof createSessionManagerApp>
  lines: CapturedLine[]
  /** Graceful stop; errors (e.g. a failing fsync on close) are returned, not thrown. */
  stop(): Promise<unknown>
}

/**
 * The real service stack in one process: the session lifecycle on the embedded repository over a FileEventStore on the injected file
 * system, behind the real Hono app, the way `startSessionManager` wires it (minus the socket and
 * real timers: pass a ManualClock and call `service.sweepExpired()`).
 */
export async function bootService(options: BootOptions): Promise<BootedService> {
  const { lines, logger } = captureLogger(options.lines)
  const config = loadConfig(
    options.tokens ? { CARE_CALLER_TOKENS: CALLER_TOKEN, CARE_AUDITOR_TOKENS: AUDITOR_TOKEN } : {},
  )
  const policy = { ...config.policy, ...options.policy }
  const embedded = await openEmbeddedStore({
    dataDir: options.dir,
    fs: options.fs,
    log: { ...(options.maxFileBytes ? { maxFileBytes: options.maxFileBytes } : {}), logger },
    snapshots: options.snapshots ?? { enabled: false, everyEvents: 1, intervalMs: 1000 },
    retryWindowMs: policy.retryWindowMs,
    logger,
  })
  const { repository } = embedded
  const service = new SessionLifecycleService(repository, {
    policy,
    newId: createIdFactory(),
    ...(options.clock ? { clock: options.clock } : {}),
    timers: false,
    logger,
  })
  try {
    await service.recover()
  } catch (err) {
    await service.close().catch(() => {})
    throw err
  }
  const opened = embedded.store
  const app = createSessionManagerApp({
    sessions: () => service,
    storageHealthy: () => opened.healthy,
    storageNote: () => opened.storageNote,
    integrityProblem: () => opened.integrityProblem,
    storeStatus: () => ({ hot_sessions: repository.hotSessions, scrub: opened.scrubStatus }),
    config,
    logger,
  })
  return {
    service,
    store: opened,
    embedded,
    app,
    lines,
    async stop() {
      try {
        await service.close()
        return undefined
      } catch (err) {
        return err
      }
    },
  }
}

/** The data directory every in-memory test uses. */
export const DATA_DIR = '/data'

/** An in-memory disk whose data directory already exists durably (as after installation). */
export async function freshDisk(random?: () => number): Promise<PowerLossFileSystem> {
  const fs = new PowerLossFileSystem(random ? { random } : {})
  await fs.mkdir(DATA_DIR)
  await fs.syncDir('/')
  return fs
}
