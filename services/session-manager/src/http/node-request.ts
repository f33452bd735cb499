import { IncomingMessage } from 'node:http'
import type { Context } from 'hono'

// Under @hono/node-server, `c.req.raw` is a lazy stand-in for a Fetch Request: the first read of its
// `headers` copies every header into a Fetch `Headers`, and the first read of its body builds a full
// Request with a web stream and an abort signal. The hot routes read Node's own request instead.

/**
 * The Node request behind a Hono context when served by @hono/node-server; undefined elsewhere
 * (`app.request` in tests, other runtimes).
 *
 * @example
 * const incoming = nodeRequestOf(c)
 * observer.begin(c.req.method, incoming ? incoming.headers : c.req.raw.headers)
 */
export function nodeRequestOf(c: Context): IncomingMessage | undefined {
  const incoming: unknown = (c.env as { incoming?: unknown } | undefined)?.incoming
  return incoming instanceof IncomingMessage ? incoming : undefined
}

/**
 * One request header (a repeated one joined with `, `, as Fetch `Headers` does), read from Node's
 * header object when there is one, so that no Fetch `Headers` copy is built for it.
 *
 * @example
 * const type = requestHeader(c, 'content-type') ?? ''
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = nodeRequestOf(c)
  if (!incoming) return c.req.header(name)
  const value = incoming.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
