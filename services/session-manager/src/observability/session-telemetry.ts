import {
  type CommitObservation,
  eventLogCommitObserver,
  type ServiceMetrics,
  type Tracing,
} from '@care/observability'
import type { SessionLifecycleEvent } from '@care/schemas'
import { trace } from '@opentelemetry/api'
import { Counter, Gauge } from 'prom-client'
import type { LifecycleObserver } from '../sessions/session-lifecycle.js'

/** Pool counters as `pg.Pool` reports them. */
export interface PoolCounts {
  readonly totalCount: number
  readonly idleCount: number
  readonly waitingCount: number
}

/**
 * What {@link SessionTelemetry.watchStore} reads (the embedded store's status).
 *
 * @example
 * telemetry.watchStore(() => ({ hot_sessions: 10, hot_answers: 200, snapshot_age_seconds: 42 }))
 */
export interface StoreGaugeStatus {
  hot_sessions: number
  hot_answers: number
  snapshot_age_seconds?: number
  scrub?: { segmentsChecked?: number; segmentsTotal?: number; lastResult?: string; mismatch?: unknown }
}

/**
 * The session-manager's own metrics and spans on top of the shared HTTP ones: open sessions,
 * timeout ends by reason, recovery duration, event-log commits, PostgreSQL pool use, and an
 * `event_log.append` span (with `session.id` and the `session.start`/`session.end` span events) for
 * every lifecycle event written, whichever store holds it (through the lifecycle's observer). Nothing here uses a session id as a metric label.
 *
 * @example
 * const telemetry = createSessionTelemetry(metrics, tracing)
 * telemetry.watchOpenSessions(() => service?.openSessions())
 * await openBackend(config, { onCommit: telemetry.onCommit, lifecycleObserver: telemetry.lifecycle })
 */
export interface SessionTelemetry {
  readonly onCommit: (commit: CommitObservation) => void
  watchOpenSessions(count: () => number | Promise<number> | undefined): void
  watchPool(pool: () => PoolCounts | undefined): void
  /** The embedded store's snapshot age, hot-state sizes and background scrub, as gauges. */
  watchStore(status: () => StoreGaugeStatus | undefined): void
  recovered(seconds: number): void
  /** Pass as the lifecycle's `observer`: counts timeout ends and traces every write, on any store. */
  readonly lifecycle: LifecycleObserver
}

/**
 * Registers the session-manager metrics on `metrics.registry` (see {@link SessionTelemetry}).
 *
 * @example
 * const telemetry = createSessionTelemetry(createServiceMetrics({ service: 'session-manager' }), tracing)
 */
export function createSessionTelemetry(metrics: ServiceMetrics, tracing: Tracing): SessionTelemetry {
  const registers = [metrics.registry]
  let openSessions: () => number | Promise<number> | undefined = () => undefined
  let pool: () => PoolCounts | undefined = () => undefined
  new Gauge({
    name: 'care_sessions_open',
    help: 'Sessions currently open (started, not ended).',
    registers,
    async collect() {
      const count = await openSessions()
      if (count !== undefined) this.set(count)
    },
  })
  const timeouts = new Counter({
    name: 'care_session_timeouts_total',
    help: 'Sessions ended by the service on a timeout, by reason (idle_timeout, max_duration).',
    labelNames: ['reason'] as const,
    registers,
  })
  const recovery = new Gauge({
    name: 'care_recovery_duration_seconds',
    help: 'How long the last start-up recovery (log replay or database migration) took.',
    registers,
  })
  new Gauge({
    name: 'care_db_pool_connections',
    help: 'PostgreSQL pool connections by state (in_use, idle).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const counts = pool()
      if (!counts) return
      this.set({ state: 'in_use' }, counts.totalCount - counts.idleCount)
      this.set({ state: 'idle' }, counts.idleCount)
    },
  })
  new Gauge({
    name: 'care_db_pool_waiting_requests',
    help: 'Queries waiting for a PostgreSQL pool connection.',
    registers,
    collect() {
      const counts = pool()
      if (counts) this.set(counts.waitingCount)
    },
  })
  let store: () => StoreGaugeStatus | undefined = () => undefined
  new Gauge({
    name: 'care_snapshot_age_seconds',
    help: 'Seconds since the newest snapshot of the embedded store was written (or started from).',
    registers,
    collect() {
      const age = store()?.snapshot_age_seconds
      if (age !== undefined) this.set(age)
    },
  })
  new Gauge({
    name: 'care_store_hot_entries',
    help: 'Entries the embedded store holds in memory, by kind (sessions: open sessions; answers: record_ids in the retry window).',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      const status = store()
      if (!status) return
      this.set({ kind: 'sessions' }, status.hot_sessions)
      this.set({ kind: 'answers' }, status.hot_answers)
    },
  })
  new Gauge({
    name: 'care_scrub_segments',
    help: 'Background scrub of sealed log segments against their digests: segments checked in this pass, and in total.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const scrub = store()?.scrub
      if (!scrub) return
      if (scrub.segmentsChecked !== undefined) this.set({ state: 'checked' }, scrub.segmentsChecked)
      if (scrub.segmentsTotal !== undefined) this.set({ state: 'total' }, scrub.segmentsTotal)
    },
  })
  new Gauge({
    name: 'care_scrub_last_result_ok',
    help: 'Result of the last background scrub pass: 1 every sealed segment matched its digest, 0 a mismatch (see /readyz).',
    registers,
    collect() {
      const scrub = store()?.scrub
      if (!scrub || (scrub.lastResult === undefined && scrub.mismatch === undefined)) return
      this.set(scrub.mismatch === undefined && scrub.lastResult !== 'mismatch' ? 1 : 0)
    },
  })
  const observeCommit = eventLogCommitObserver(metrics.registry)
  const countTimeout = (event: SessionLifecycleEvent) => {
    if (event.event === 'session.end' && event.reason !== 'explicit') timeouts.inc({ reason: event.reason })
  }
  return {
    onCommit: tracing.enabled
      ? (commit) => {
          observeCommit(commit)
          // One span per group commit (write + fdatasync), under the append that opened the batch.
          const endedAt = Date.now()
          tracing.tracer
            .startSpan('event_log.commit', {
              startTime: endedAt - commit.syncSeconds * 1000,
              attributes: { 'care.commit.records': commit.records, 'care.commit.bytes': commit.bytes },
            })
            .end(endedAt)
        }
      : observeCommit,
    watchOpenSessions(count) {
      openSessions = count
    },
    watchPool(counts) {
      pool = counts
    },
    watchStore(status) {
      store = status
    },
    recovered(seconds) {
      recovery.set(seconds)
    },
    lifecycle: {
      record(event, write) {
        if (!tracing.enabled) {
          // Only ends are counted: a start or touch is written with no wrapper around it.
          if (event.event !== 'session.end') return write()
          return write().then((stored) => {
            if (stored) countTimeout(event)
            return stored
          })
        }
        // The request being answered, if any. A timer armed during an earlier request carries that
        // request's (ended) span in its context: a timeout end found by it starts a trace of its own.
        const active = trace.getActiveSpan()
        const requestSpan = active?.isRecording() ? active : undefined
        return tracing.tracer.startActiveSpan(
          'event_log.append',
          {
            attributes: { 'session.id': event.session_id, 'care.event': event.event },
            ...(requestSpan ? {} : { root: true }),
          },
          async (span) => {
            try {
              const stored = await write()
              span.setAttribute('care.stored', stored)
              if (!stored) return stored
              countTimeout(event)
              // The lifecycle change as a span event on the request's span (or this one, for a timeout).
              const target = requestSpan ?? span
              if (event.event === 'session.start') {
                target.setAttribute('session.id', event.session_id)
                target.addEvent('session.start', { 'session.id': event.session_id })
              }
              if (event.event === 'session.end')
                target.addEvent('session.end', {
                  'session.id': event.session_id,
                  'care.end_reason': event.reason,
                })
              return stored
            } catch (err) {
              span.recordException(err as Error)
              span.setStatus({ code: 2 })
              throw err
            } finally {
              span.end()
            }
          },
        )
      },
    },
  }
}
