import { createRequire } from 'node:module'

type ActiveSpanLookup = () => { setAttribute(key: string, value: string): unknown } | undefined

/**
 * `@opentelemetry/api` is an optional peer: when it is installed, the guards record the accepted
 * id as `session.id` on the active span; when it is not (or no tracer is registered, so there is
 * no active span), this is a no-op. Loaded once, synchronously, at import.
 */
const activeSpan: ActiveSpanLookup | undefined = (() => {
  try {
    const api = createRequire(import.meta.url)('@opentelemetry/api') as {
      trace: { getActiveSpan: ActiveSpanLookup }
    }
    return () => api.trace.getActiveSpan()
  } catch {
    return undefined
  }
})()

/** Sets the semantic-convention attribute `session.id` on the active span, if there is one. */
export function recordSessionOnActiveSpan(sessionId: string): void {
  activeSpan?.()?.setAttribute('session.id', sessionId)
}
