import { readLog } from '@care/event-log'
import type { CrashKind, PowerLossFileSystem } from '@care/event-log/testing'
import { fcRuns, scaled, timeoutMs } from '@care/test-kit'
import fc from 'fast-check'
import { monotonicFactory } from 'ulid'
import { describe, expect, it } from 'vitest'
import { verifySessionLog } from '../audit/session-log-rules.js'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { decodeSnapshot, encodeSnapshot, SNAPSHOTS_DIR } from '../store/snapshot-files.js'
import { type BootedService, bootService, DATA_DIR, freshDisk } from './test-support/service-harness.js'

const MINUTE = 60_000
const POLICY = { idleTimeoutMs: 10 * MINUTE, maxDurationMs: 30 * MINUTE, retryWindowMs: 24 * 60 * MINUTE }
const USERS = ['user-a', 'user-b', 'user-c']

type EndReason = 'explicit' | 'idle_timeout' | 'max_duration'

/** The reference model: what a session manager must have done, in a few lines of plain logic. */
interface ModelSession {
  id: string
  user: string
  startedAt: number
  lastActivity: number
  end?: { reason: EndReason; at: number }
  events: string[]
}

interface Model {
  now: number
  sessions: ModelSession[]
  /** Requests that succeeded, with their answers, for retries. */
  done: { path: string; body: Record<string, unknown>; output: unknown }[]
}

interface Real {
  disk: PowerLossFileSystem
  clock: ManualClock
  booted: BootedService
  newId: (t: number) => string
}

function deadline(s: ModelSession): { at: number; reason: EndReason } {
  const idle = s.lastActivity + POLICY.idleTimeoutMs
  const max = s.startedAt + POLICY.maxDurationMs
  return idle < max ? { at: idle, reason: 'idle_timeout' } : { at: max, reason: 'max_duration' }
}

function expireIfDue(m: Model, s: ModelSession): void {
  if (s.end) return
  const d = deadline(s)
  if (d.at <= m.now) {
    s.end = { reason: d.reason, at: d.at }
    s.events.push('session.end')
  }
}

const sweep = (m: Model) => {
  for (const s of m.sessions) expireIfDue(m, s)
}

async function post(r: Real, path: string, body: unknown) {
  const res = await r.booted.app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

function baseBody(r: Real, user: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: '1.1',
    record_id: r.newId(r.clock.now()),
    user_id: user,
    timestamp: new Date(r.clock.now()).toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
    ...extra,
  }
}

/** The service's view of every session equals the model's. */
async function expectAgrees(m: Model, r: Real): Promise<void> {
  expect(await r.booted.service.openSessions()).toBe(m.sessions.filter((s) => !s.end).length)
  for (const s of m.sessions) {
    const summary = await r.booted.service.describe(s.id)
    const expected: Record<string, unknown> = {
      session_id: s.id,
      user_id: s.user,
      status: s.end ? 'ended' : 'open',
      started_at: new Date(s.startedAt).toISOString(),
      last_activity_at: new Date(s.lastActivity).toISOString(),
      event_count: s.events.length,
    }
    if (s.end) {
      expected.end_reason = s.end.reason
      expected.ended_at = new Date(s.end.at).toISOString()
    } else expected.expires_at = new Date(deadline(s).at).toISOString()
    expect(summary, `session ${s.id}`).toEqual(expected)
  }
}

class StartCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly user: string) {}
  check = () => true
  async run(m: Model, r: Real) {
    const body = baseBody(r, this.user, { metadata: { step: m.done.length } })
    const res = await post(r, '/sessions.start', body)
    expect(res.status, JSON.stringify(res.body)).toBe(201)
    const id = res.body.session_id as string
    expect(m.sessions.some((s) => s.id === id)).toBe(false)
    m.sessions.push({ id, user: this.user, startedAt: m.now, lastActivity: m.now, events: ['session.start'] })
    m.done.push({ path: '/sessions.start', body, output: res.body })
    await expectAgrees(m, r)
  }
  toString = () => `start(${this.user})`
}

/** touch or end a known session, as its owner or as another user. */
class SessionCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly action: 'touch' | 'end',
    readonly pick: number,
    readonly asOtherUser: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.sessions.length > 0
  async run(m: Model, r: Real) {
    const s = m.sessions[this.pick % m.sessions.length]!
    const user = this.asOtherUser ? USERS[(USERS.indexOf(s.user) + 1) % USERS.length]! : s.user
    const body = baseBody(r, user, { session_id: s.id })
    const res = await post(r, `/sessions.${this.action}`, body)
    if (this.asOtherUser) {
      // Another user's session answers exactly like an unknown one.
      expect(res.status).toBe(404)
      expect(res.body.error).toBe('session_not_found')
    } else {
      expireIfDue(m, s)
      if (s.end) {
        expect(res.status, JSON.stringify(res.body)).toBe(409)
        expect(res.body).toMatchObject({
          error: 'session_ended',
          details: { reason: s.end.reason, ended_at: new Date(s.end.at).toISOString() },
        })
      } else {
        expect(res.status, JSON.stringify(res.body)).toBe(200)
        expect(res.body).toMatchObject({ event: `session.${this.action}`, session_id: s.id })
        if (this.action === 'touch') s.lastActivity = m.now
        else s.end = { reason: 'explicit', at: m.now }
        s.events.push(`session.${this.action}`)
        m.done.push({ path: `/sessions.${this.action}`, body, output: res.body })
      }
    }
    await expectAgrees(m, r)
  }
  toString = () => `${this.action}(#${this.pick}${this.asOtherUser ? ', other user' : ''})`
}

class UnknownSessionCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly action: 'touch' | 'end') {}
  check = () => true
  async run(m: Model, r: Real) {
    const res = await post(
      r,
      `/sessions.${this.action}`,
      baseBody(r, USERS[0]!, { session_id: r.newId(m.now) }),
    )
    expect(res.status).toBe(404)
    await expectAgrees(m, r)
  }
  toString = () => `${this.action}(unknown session)`
}

/** Resends an earlier successful request: the same answer, 200, and nothing new in the log. */
class RetryCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly pick: number,
    readonly changeBody: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.done.length > 0
  async run(m: Model, r: Real) {
    const earlier = m.done[this.pick % m.done.length]!
    const body = this.changeBody ? { ...earlier.body, performer_id: 'someone-else' } : earlier.body
    const res = await post(r, earlier.path, body)
    if (this.changeBody) {
      expect(res.status).toBe(422)
      expect(res.body.error).toBe('idempotency_conflict')
    } else {
      expect(res.status).toBe(200)
      expect(res.body).toEqual(earlier.output)
    }
    await expectAgrees(m, r)
  }
  toString = () => `retry(#${this.pick}${this.changeBody ? ', changed body' : ''})`
}

/** Time passes and the timeout sweep runs (what the timer would do). */
class AdvanceCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    r.clock.advance(this.ms)
    m.now += this.ms
    await r.booted.service.sweepExpired()
    sweep(m)
    await expectAgrees(m, r)
  }
  toString = () => `advance(${Math.round(this.ms / 1000)}s)`
}

/** Graceful restart, SIGKILL or power loss, then recovery from the same disk. */
class RestartCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly kind: 'graceful' | CrashKind,
    readonly downMs: number,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    if (this.kind === 'graceful') {
      expect(await r.booted.stop()).toBeUndefined()
    } else {
      r.disk.crash()
      await r.booted.stop() // fails: the process is gone; this only drops its memory
      r.disk.reboot(this.kind)
    }
    // Time passes while the service is down; no timer runs.
    r.clock.advance(this.downMs)
    m.now += this.downMs
    r.booted = await boot(r)
    // A graceful stop wrote a snapshot: the start replays nothing of the log.
    if (this.kind === 'graceful') expect(r.booted.embedded.facts.events_replayed).toBe(0)
    // Recovery ends the sessions that expired while the service was down.
    sweep(m)
    await expectAgrees(m, r)
  }
  toString = () => `restart(${this.kind}, down ${Math.round(this.downMs / 1000)}s)`
}

/** Snapshots only when asked (SnapshotCommand) and at graceful shutdown. */
const SNAPSHOTS = { enabled: true, everyEvents: 1_000_000_000, intervalMs: 24 * 60 * MINUTE }

const boot = (r: Pick<Real, 'disk' | 'clock'>) =>
  bootService({
    fs: r.disk,
    dir: DATA_DIR,
    clock: r.clock,
    policy: POLICY,
    maxFileBytes: 4000,
    snapshots: SNAPSHOTS,
  })

/** The service writes a snapshot of its hot state now (a later crash restarts from it plus the log after it). */
class SnapshotCommand implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(m: Model, r: Real) {
    await r.booted.embedded.snapshots.snapshotNow('model')
    await expectAgrees(m, r)
  }
  toString = () => 'snapshot'
}

type Damage = 'drop-indexes' | 'corrupt-snapshot' | 'foreign-snapshot'

/**
 * Graceful stop (which writes a snapshot), damage to derived data while the service is down, then a
 * start: dropped segment indexes are rebuilt; a corrupt snapshot or one naming another log's record is
 * reported and skipped (older snapshot or full replay). The service agrees with the model either way.
 */
class DamagedRestartCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly damage: Damage) {}
  check = () => true
  async run(m: Model, r: Real) {
    expect(await r.booted.stop()).toBeUndefined()
    const snapshotsDir = `${DATA_DIR}/${SNAPSHOTS_DIR}`
    const newest = r.disk
      .fileNames(snapshotsDir)
      .filter((n) => n.endsWith('.json'))
      .sort()
      .at(-1)
    if (this.damage === 'drop-indexes') {
      for (const name of r.disk.fileNames(`${DATA_DIR}/events`)) {
        if (name.endsWith('.idx')) await r.disk.unlink(`${DATA_DIR}/events/${name}`)
      }
      await r.disk.syncDir(`${DATA_DIR}/events`)
    } else if (newest) {
      const path = `${snapshotsDir}/${newest}`
      const bytes = r.disk.contents(path)!
      if (this.damage === 'corrupt-snapshot') {
        const at = bytes.length - 3
        bytes.writeUInt8(bytes.readUInt8(at) ^ 0x04, at)
        r.disk.put(path, bytes)
      } else {
        const snapshot = decodeSnapshot<unknown, { seq: number; hash: string }>(bytes)
        if (typeof snapshot === 'string') throw new Error(snapshot)
        const foreign = {
          ...snapshot,
          point: { ...snapshot.point, hash: `${snapshot.point.hash.slice(0, -4)}beef` },
        }
        r.disk.put(path, encodeSnapshot(foreign))
      }
    }
    r.booted = await boot(r)
    if (this.damage !== 'drop-indexes' && newest) {
      expect(r.booted.lines.some((l) => l.level === 'warn' && /snapshot/.test(l.msg))).toBe(true)
      expect(r.booted.embedded.facts.snapshot ?? 'full replay').not.toContain(newest)
    }
    sweep(m)
    await expectAgrees(m, r)
  }
  toString = () => `restart(${this.damage})`
}

const commands = [
  fc.constantFrom(...USERS).map((u) => new StartCommand(u)),
  fc
    .tuple(fc.constantFrom<'touch' | 'end'>('touch', 'touch', 'end'), fc.nat(), fc.boolean())
    .map(([a, p, other]) => new SessionCommand(a, p, other && p % 4 === 0)),
  fc.constantFrom<'touch' | 'end'>('touch', 'end').map((a) => new UnknownSessionCommand(a)),
  fc.tuple(fc.nat(), fc.boolean()).map(([p, change]) => new RetryCommand(p, change && p % 3 === 0)),
  fc
    .oneof(fc.integer({ min: 0, max: 3 * MINUTE }), fc.integer({ min: 5 * MINUTE, max: 20 * MINUTE }))
    .map((ms) => new AdvanceCommand(ms)),
  fc
    .tuple(
      fc.constantFrom<'graceful' | CrashKind>('graceful', 'power-loss', 'process-kill'),
      fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 * MINUTE })),
    )
    .map(([k, down]) => new RestartCommand(k, down)),
  fc.constant(new SnapshotCommand()),
  fc
    .constantFrom<Damage>('drop-indexes', 'corrupt-snapshot', 'foreign-snapshot')
    .map((d) => new DamagedRestartCommand(d)),
]

describe('session state machine against a reference model', () => {
  it(
    'agrees with the model after every command, and the replayed log agrees at the end',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.commands(commands, { maxCommands: scaled(50, 200), size: 'max' }),
          async (cmds) => {
            const clock = new ManualClock()
            const disk = await freshDisk()
            const booted = await boot({ disk, clock })
            const real: Real = { disk, clock, booted, newId: monotonicFactory() }
            const model: Model = { now: clock.now(), sessions: [], done: [] }
            try {
              await fc.asyncModelRun(() => ({ model, real }), cmds)
              // Replay the log from disk: per session, the same events in the same order as the model.
              const replayed = new Map<string, string[]>()
              for await (const { record } of readLog(DATA_DIR, { fs: real.disk })) {
                const list = replayed.get(record.session_id as string) ?? []
                list.push(record.event as string)
                replayed.set(record.session_id as string, list)
              }
              expect(replayed).toEqual(new Map(model.sessions.map((s) => [s.id, s.events])))
              const report = await verifySessionLog(DATA_DIR, { fs: real.disk })
              expect(report.ok, JSON.stringify(report)).toBe(true)
            } finally {
              await real.booted.stop()
            }
          },
        ),
        fcRuns('session model', 60, 2000),
      )
    },
    timeoutMs(90_000, 3_600_000),
  )
})
