/**
 * POSTs each new signed checkpoint (`text/plain`) to a configured URL — a witness or an operator's
 * archive — in the background: a failure is logged and retried with backoff (1 s doubling to 60 s),
 * a newer checkpoint replaces one still waiting, and nothing here ever blocks or fails an append.
 *
 * @example
 * const publisher = new CheckpointPublisher('https://archive.example/care', logger)
 * publisher.publish(note)
 */
export class CheckpointPublisher {
  readonly #url: string
  readonly #logger: { warn(o: object, m: string): void; info(o: object, m: string): void }
  #pending: string | undefined
  #sending = false
  #timer: NodeJS.Timeout | undefined
  #delayMs = 1000
  #closed = false
  /** Outcome counters and the last error, for operators and tests. */
  readonly status = { published: 0, failures: 0, lastError: undefined as string | undefined }

  constructor(url: string, logger: { warn(o: object, m: string): void; info(o: object, m: string): void }) {
    this.#url = url
    this.#logger = logger
  }

  /** Queues `note` for sending (replacing a checkpoint not sent yet). */
  publish(note: string): void {
    if (this.#closed) return
    this.#pending = note
    if (!this.#sending && this.#timer === undefined) void this.#send()
  }

  async #send(): Promise<void> {
    const note = this.#pending
    if (note === undefined || this.#closed) return
    this.#sending = true
    try {
      const res = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: note,
        signal: AbortSignal.timeout(10_000),
      })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      await res.arrayBuffer().catch(() => undefined)
      if (this.#pending === note) this.#pending = undefined
      this.status.published++
      this.#delayMs = 1000
    } catch (err) {
      this.status.failures++
      this.status.lastError = (err as Error).message
      this.#logger.warn(
        { err, url: this.#url, retry_in_ms: this.#delayMs },
        'transparency: could not POST the checkpoint; will retry',
      )
      if (!this.#closed) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          void this.#send()
        }, this.#delayMs)
        this.#timer.unref()
        this.#delayMs = Math.min(this.#delayMs * 2, 60_000)
      }
      return
    } finally {
      this.#sending = false
    }
    if (this.#pending !== undefined) void this.#send()
  }

  /** Stops retrying (a checkpoint not delivered yet stays in `checkpoints/` for a later copy). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
  }
}
