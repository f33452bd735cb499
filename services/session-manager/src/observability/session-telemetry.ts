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
    recovered(seconds) {
      recovery.set(seconds)
    },
    lifecycle: {
      async record(event, write) {
        if (!tracing.enabled) {
          const stored = await write()
          if (stored) countTimeout(event)
          return stored
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
