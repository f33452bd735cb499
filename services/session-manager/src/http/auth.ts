import type { MiddlewareHandler } from 'hono'
import { type Role, tokenDigest } from '../config.js'
import { sendError } from './errors.js'
import type { SessionManagerEnv } from './http-env.js'
import { requestHeader } from './node-request.js'

/**
 * Requires a bearer token that carries `role`: 401 without a valid token, 403 with a token of
 * another role. With no tokens configured (loopback-only development), every request passes.
 * Tokens are compared by SHA-256 digest, never stored or logged in clear.
 *
 * @example
 * app.post('/sessions.start', requireRole(config.tokens, 'caller'), handler)
 */
export function requireRole(
  tokens: ReadonlyMap<string, ReadonlySet<Role>>,
  role: Role,
): MiddlewareHandler<SessionManagerEnv> {
  return async function roleGuard(c, next) {
    if (tokens.size > 0) {
      const match = /^Bearer ([\x21-\x7E]{1,512})$/.exec(requestHeader(c, 'authorization') ?? '')
      const roles = match ? tokens.get(tokenDigest(match[1]!)) : undefined
      if (!roles) {
        c.header('WWW-Authenticate', 'Bearer realm="care-session-manager"')
        return sendError(c, 'unauthorized')
      }
      if (!roles.has(role))
        return sendError(c, 'forbidden', { message: `This action needs the ${role} role.` })
    }
    await next()
  }
}
