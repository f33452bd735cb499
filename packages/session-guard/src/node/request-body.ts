/**
 * What {@link readUnreadBody} needs of a Node request (`http.IncomingMessage`), typed structurally
 * so the Hono adapter, which also runs outside Node, does not import `node:http`.
 */
export interface NodeRequestBody {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly readableDidRead: boolean
  readonly readableEnded: boolean
  on(event: 'data', listener: (chunk: Buffer) => void): unknown
  on(event: 'end' | 'aborted', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
}

/**
 * The Node request behind a framework request when its body has not been touched yet: an
 * `IncomingMessage` nothing has read from (and not a serverless request with a `rawBody`).
 *
 * @example
 * const incoming = unreadNodeRequest(c.env?.incoming)
 * if (incoming) text = await readUnreadBody(incoming, 64 * 1024)
 */
export function unreadNodeRequest(candidate: unknown): NodeRequestBody | undefined {
  if (typeof candidate !== 'object' || candidate === null) return undefined
  const incoming = candidate as Partial<NodeRequestBody>
  if (typeof incoming.on !== 'function' || typeof incoming.headers !== 'object') return undefined
  if (incoming.readableDidRead !== false || incoming.readableEnded !== false) return undefined
  if ('rawBody' in incoming) return undefined
  return incoming as NodeRequestBody
}

/**
 * What {@link takeArrivedBody} needs of a Node request besides {@link NodeRequestBody}: Node's own
 * public state of a message whose every byte has been received and parsed (`http.IncomingMessage`
 * has all of it).
 *
 * @example
 * const req: ArrivedNodeRequestBody = incomingMessage
 * if (req.complete) console.log(`${req.readableLength} bytes buffered`)
 */
export interface ArrivedNodeRequestBody extends NodeRequestBody {
  readonly complete: boolean
  readonly readableEncoding: string | null
  readonly readableLength: number
  readonly readableFlowing: boolean | null
  read(): Buffer | null
}

/**
 * What {@link takeArrivedBody} answers for a body that has arrived whole but is over the limit.
 *
 * @example
 * if (takeArrivedBody(incoming, limit) === OVER_LIMIT) return answer413()
 */
export const OVER_LIMIT: unique symbol = Symbol('care.sessionGuard.overLimit')

/**
 * Takes, synchronously, the body of an unread Node request that has already arrived whole (Node's
 * `complete`: for a small body, almost always by the time a route runs), as UTF-8 text without a
 * leading byte-order mark; {@link OVER_LIMIT} when it holds more than `limit` bytes (left unread);
 * undefined when some of it is still on its way, the stream was given an encoding or is already
 * flowing (read it with {@link readUnreadBody} then). Uses only public `Readable` state and `read()`: no listener,
 * no promise.
 *
 * @example
 * const taken = takeArrivedBody(incoming, 64 * 1024)
 * const text = taken === undefined ? await readUnreadBody(incoming, 64 * 1024) : taken
 */
export function takeArrivedBody(
  incoming: NodeRequestBody,
  limit: number,
): string | typeof OVER_LIMIT | undefined {
  const arrived = incoming as Partial<ArrivedNodeRequestBody>
  // Flowing (a 'data' listener or resume() already asked for the chunks): read() would hand over only
  // the first buffered chunk, and the others go to that listener.
  if (
    arrived.complete !== true ||
    arrived.readableEncoding !== null ||
    arrived.readableFlowing === true ||
    typeof arrived.read !== 'function'
  )
    return undefined
  const size = arrived.readableLength
  if (typeof size !== 'number') return undefined
  if (size > limit) return OVER_LIMIT
  // Without a size, read() hands over everything buffered, which for a complete message is the body.
  const bytes = size === 0 ? null : arrived.read()
  const text = bytes === null ? '' : bytes.toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/**
 * Reads a Node request's body straight from its stream as UTF-8 text (a leading byte-order mark
 * dropped, as Fetch's `text()` does), or undefined as soon as it passes `limit` bytes (the rest is
 * left to flow unread). Rejects when the stream fails (the client went away: `ECONNRESET`). Under
 * `@hono/node-server` this is several times cheaper than `c.req.text()`, which first builds a
 * Fetch `Request`, a web stream and an abort signal for the body.
 *
 * @example
 * const text = await readUnreadBody(req, 64 * 1024)
 * if (text === undefined) return answer413()
 */
export function readUnreadBody(incoming: NodeRequestBody, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let first: Buffer | undefined
    let chunks: Buffer[] | undefined
    let size = 0
    let settled = false
    // Listeners come off only when the read stops early; after a normal end the request is done
    // with and a late event finds the read settled (no `once` wrappers, no removals per request).
    const stop = () => {
      settled = true
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onError)
      incoming.off('aborted', onAborted)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        stop()
        resolve(undefined)
        return
      }
      if (first === undefined) first = chunk
      else if (chunks === undefined) chunks = [first, chunk]
      else chunks.push(chunk)
    }
    const onEnd = () => {
      if (settled) return
      settled = true
      const bytes = chunks ? Buffer.concat(chunks, size) : first
      const text = bytes === undefined ? '' : bytes.toString('utf8')
      resolve(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
    }
    const onError = (err: Error) => {
      if (settled) return
      stop()
      reject(err)
    }
    // The error Node itself gives a read of an aborted request (a reset connection); made only for
    // a read still waiting (an Error captures a stack trace).
    const onAborted = () => {
      if (!settled) onError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onError)
    incoming.on('aborted', onAborted)
  })
}
