import type { SessionGuardVariables } from '@care/session-guard/hono'
import type { Role } from '../config.js'

/** Hono context variables set by this service's middleware. */
export type SessionManagerEnv = {
  Variables: SessionGuardVariables & {
    /** The request body after JSON parsing and schema validation. */
    input: unknown
    roles: ReadonlySet<Role>
  }
}
