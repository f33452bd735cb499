import { isDeepStrictEqual } from 'node:util'
import type pg from 'pg'
import { monotonicFactory } from 'ulid'
import { eventOfBody } from '../event-chain.js'
import type { SchemaNames } from '../schema-names.js'

type Kind = 'start' | 'touch' | 'end'

interface SentRequest {
  kind: Kind
  body: Record<string, unknown>
  /** The 2xx answer, once there is one. */
  answer?: Record<string, unknown>
}

/**
 * A seeded random load over several instances: starts, touches, ends and retries (same record_id
 * and body, sent to another instance), bounded in count and time. Records every acknowledged (2xx)
 * answer and every answer that breaks the contract, so a test can check them against the database.
 *
 * @example
 * const load = new Workload(() => instances.map((i) => i.url), 42)
 * await load.run({ maxOps: 300, maxMs: 5000, concurrency: 8 })
 */
export class Workload {
  readonly acked: Record<string, unknown>[] = []
  readonly violations: string[] = []
  readonly statuses: Record<string, number> = {}
  private readonly sent: SentRequest[] = []
  private readonly sessions: { id: string; user: string }[] = []
  private readonly recordId = monotonicFactory()
  private state: number

  constructor(
    private readonly urls: () => string[],
    readonly seed: number,
  ) {
    this.state = seed
  }

  /** Runs `concurrency` workers until `maxOps` requests were sent or `maxMs` passed. */
  async run(options: { maxOps: number; maxMs: number; concurrency: number }): Promise<void> {
    const deadline = Date.now() + options.maxMs
    let ops = 0
    const worker = async () => {
      while (ops < options.maxOps && Date.now() < deadline) {
        ops++
        await this.step()
      }
    }
    await Promise.all(Array.from({ length: options.concurrency }, worker))
  }

  /** Re-sends every request that never got a 2xx (e.g. a 503 during an outage), like a client would. */
  async retryUnanswered(): Promise<void> {
    for (const request of this.sent.filter((r) => !r.answer)) await this.send(request, true)
  }

  private async step(): Promise<void> {
    const roll = this.random()
    const session = this.sessions.length > 0 ? this.sessions[this.int(this.sessions.length)] : undefined
    if (roll < 0.35 || !session) {
      const user = `user-${this.int(5)}`
      await this.send({ kind: 'start', body: this.base(user) })
    } else if (roll < 0.6) {
      await this.send({ kind: 'touch', body: { ...this.base(session.user), session_id: session.id } })
    } else if (roll < 0.8) {
      await this.send({ kind: 'end', body: { ...this.base(session.user), session_id: session.id } })
    } else {
      const earlier = this.sent[this.int(this.sent.length)]
      if (earlier) await this.send(earlier, true)
    }
  }

  private async send(request: SentRequest, retry = false): Promise<void> {
    if (!retry) this.sent.push(request)
    // A retry may race the original: only one answered before this send started must be replayed as 200.
    const answeredBefore = request.answer !== undefined
    const urls = this.urls()
    const url = urls[this.int(urls.length)]!
    let res: Response
    try {
      res = await fetch(`${url}/sessions.${request.kind}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request.body),
        signal: AbortSignal.timeout(10_000),
      })
    } catch {
      this.count('no answer')
      return // instance killed or unreachable: not acknowledged; a later retry may be
    }
    this.count(String(res.status))
    const json = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined
    if (res.status === 201 || res.status === 200) {
      if (!json) return void this.violations.push(`${request.kind}: ${res.status} without a JSON body`)
      if (request.answer) {
        if (!isDeepStrictEqual(json, request.answer)) {
          this.violations.push(`retried ${request.kind} got ${res.status} and a different answer`)
        } else if (answeredBefore && res.status !== 200) {
          this.violations.push(`retried ${request.kind} answered ${res.status}, not 200`)
        }
        return
      }
      request.answer = json
      this.acked.push(json)
      if (request.kind === 'start')
        this.sessions.push({ id: String(json.session_id), user: String(json.user_id) })
      return
    }
    if (res.status === 503) {
      if (!res.headers.get('retry-after')) this.violations.push('503 without Retry-After')
      return
    }
    if (res.status === 409 && request.kind !== 'start') return // the session ended (explicitly or by timeout)
    this.violations.push(`${request.kind} answered ${res.status}: ${JSON.stringify(json)}`)
  }

  private base(user: string): Record<string, unknown> {
    return {
      schema_version: '1.1',
      record_id: this.recordId(),
      user_id: user,
      timestamp: new Date().toISOString(),
      source: 'ui',
      origin: 'human',
      performer_id: 'caregiver-1',
    }
  }

  private count(key: string): void {
    this.statuses[key] = (this.statuses[key] ?? 0) + 1
  }

  /** mulberry32: small, seeded, good enough to pick operations. */
  private random(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let x = this.state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }

  private int(n: number): number {
    return Math.floor(this.random() * n)
  }
}

/**
 * The invariants after a load, read from the database as the superuser: every acknowledged answer
 * is stored exactly as answered, one session per start request, at most one end per session (and
 * exactly one once all have timed out). Returns the problems found (empty when all hold).
 *
 * @example
 * expect(await checkInvariants(pool, names, load.acked, { allEnded: true })).toEqual([])
 */
export async function checkInvariants(
  pool: pg.Pool,
  t: SchemaNames,
  acked: Record<string, unknown>[],
  options: { allEnded: boolean },
): Promise<string[]> {
  const problems: string[] = []
  const { rows } = await pool.query<{ record_id: string; body: string }>(
    `SELECT record_id, body FROM ${t.events} WHERE record_id = ANY($1::text[])`,
    [acked.map((a) => String(a.record_id))],
  )
  const stored = new Map(rows.map((r) => [r.record_id, eventOfBody(r.body)]))
  for (const answer of acked) {
    const event = stored.get(String(answer.record_id))
    if (!event) problems.push(`acknowledged ${answer.event} ${answer.record_id} is not in the database`)
    else if (!isDeepStrictEqual(event, answer))
      problems.push(`acknowledged ${answer.record_id} differs from the stored event`)
  }
  const startsPerInput = await pool.query(
    `SELECT input_record_id FROM ${t.events} WHERE event = 'session.start' GROUP BY input_record_id HAVING count(*) > 1`,
  )
  if (startsPerInput.rowCount) problems.push(`${startsPerInput.rowCount} start requests created two sessions`)
  const ends = await pool.query<{ session_id: string; n: string }>(
    `SELECT s.session_id, count(e.seq) AS n
       FROM ${t.sessions} s LEFT JOIN ${t.events} e ON e.session_id = s.session_id AND e.event = 'session.end'
      GROUP BY s.session_id HAVING count(e.seq) > 1 OR (count(e.seq) = 0 AND $1)`,
    [options.allEnded],
  )
  for (const row of ends.rows) problems.push(`session ${row.session_id} has ${row.n} end events`)
  const projection = await pool.query(
    `SELECT s.session_id FROM ${t.sessions} s
      WHERE s.event_count <> (SELECT count(*) FROM ${t.events} e WHERE e.session_id = s.session_id)
         OR (s.ended_at IS NULL) <> NOT EXISTS (SELECT 1 FROM ${t.events} e WHERE e.session_id = s.session_id AND e.event = 'session.end')`,
  )
  if (projection.rowCount) problems.push(`${projection.rowCount} session rows disagree with their events`)
  return problems
}
