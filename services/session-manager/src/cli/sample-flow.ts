import { SessionClient } from '@care/session-client'
import { sessionFetch } from '@care/session-guard'
import { monotonicFactory } from 'ulid'

/**
 * Where the sample flow sends its requests, and who it says it is.
 *
 * @example
 * const target: SampleFlowTarget = { sessionManagerUrl: 'http://127.0.0.1:7400', workerUrl: 'http://127.0.0.1:7401' }
 */
export interface SampleFlowTarget {
  sessionManagerUrl: string
  workerUrl: string
  /** Bearer token with the caller role, when the session manager requires one. */
  callerToken?: string
  userId?: string
  performerId?: string
  messages?: readonly string[]
  /** Told about every step as it happens (the demo prints these). */
  onStep?(step: string): void
}

/**
 * A request of the sample flow was refused or could not be sent; `step` says which.
 *
 * @example
 * if (err instanceof SampleFlowError) console.error(`${err.step}: ${err.message}`)
 */
export class SampleFlowError extends Error {
  override readonly name = 'SampleFlowError'
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message)
  }
}

const DEFAULT_MESSAGES = [
  'Good morning. I did not sleep well last night.',
  'Is it time for my medication?',
  'Please remind my daughter to call me this evening.',
]

/**
 * Plays one short, realistic interaction against running services: a UI starts a session with the
 * session manager, sends a few messages through the sample worker (propagating `x-session-id`; the
 * worker calls its downstream step with the same id), touches the session, and ends it. Resolves with
 * the session id, so the caller can show the merged timeline. Used by `pnpm demo` and its end-to-end test.
 *
 * @example
 * const { sessionId } = await playSampleFlow({ sessionManagerUrl, workerUrl, onStep: console.log })
 */
export async function playSampleFlow(
  target: SampleFlowTarget,
): Promise<{ sessionId: string; outputs: unknown[] }> {
  const nextId = monotonicFactory()
  const userId = target.userId ?? 'resident-17'
  const performerId = target.performerId ?? 'caregiver-anna'
  const say = target.onStep ?? (() => {})
  const auth: Record<string, string> = target.callerToken
    ? { authorization: `Bearer ${target.callerToken}` }
    : {}
  const base = () => ({
    schema_version: '1.1',
    record_id: nextId(),
    user_id: userId,
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: performerId,
  })
  const post = async (
    step: string,
    url: string,
    body: object,
    fetchImpl: typeof fetch = fetch,
  ): Promise<Record<string, unknown>> => {
    let res: Response
    try {
      res = await fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(body),
      })
    } catch (err) {
      throw new SampleFlowError(step, `could not reach ${new URL(url).origin}: ${(err as Error).message}`)
    }
    const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>
    if (!res.ok) throw new SampleFlowError(step, `${url} answered ${res.status}: ${JSON.stringify(answer)}`)
    return answer
  }

  // The session manager is called through @care/session-client: it mints record_id and timestamp
  // and retries a lost answer or a 503 with the same record_id (the original session comes back).
  const sessions = new SessionClient({
    baseUrl: target.sessionManagerUrl,
    source: 'ui',
    ...(target.callerToken ? { token: target.callerToken } : {}),
  })
  const who = { user_id: userId, origin: 'human', performer_id: performerId } as const
  const sessionStep = async <T>(step: string, call: Promise<T>): Promise<T> => {
    try {
      return await call
    } catch (err) {
      throw new SampleFlowError(step, `${target.sessionManagerUrl}: ${(err as Error).message}`)
    }
  }
  const started = await sessionStep(
    'start',
    sessions.start({ ...who, metadata: { device: 'kitchen-tablet', demo: true } }),
  )
  const sessionId = started.session_id
  say(`started session ${sessionId} for ${userId} (performer ${performerId})`)

  // Every call in the session carries its id explicitly: there is no "current session" to look up.
  const inSession = sessionFetch(sessionId) as typeof fetch
  const outputs: unknown[] = []
  for (const text of target.messages ?? DEFAULT_MESSAGES) {
    const output = await post('infer', `${target.workerUrl}/infer`, { ...base(), text }, inSession)
    outputs.push(output)
    const label = (output.output as { label?: string } | undefined)?.label
    say(`sent "${text}" -> worker says: ${label ?? JSON.stringify(output)}`)
  }
  await sessionStep('touch', sessions.touch({ ...who, session_id: sessionId }))
  say('touched the session (the caregiver is still there)')
  const ended = await sessionStep('end', sessions.end({ ...who, session_id: sessionId }))
  say(`ended the session (reason: ${String(ended.reason)})`)
  return { sessionId, outputs }
}
