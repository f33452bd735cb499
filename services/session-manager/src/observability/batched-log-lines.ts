import { writeSync } from 'node:fs'

/**
 * Where {@link BatchedLogLines} hands its text: pino's `destination()` (a SonicBoom) fits.
 *
 * @example
 * const sink: LineSink = destination({ dest: 1, sync: false })
 */
export interface LineSink {
  write(text: string): unknown
  /** The file descriptor it writes to, if any: lines held at exit are written there directly. */
  readonly fd?: number
  /** Writes everything buffered before returning (used on process exit). */
  flushSync?(): void
  flush?(callback?: (err?: Error | null) => void): void
}

/** Streams with lines not yet handed to their sink, flushed synchronously if the process exits. */
const holdingLines = new Set<BatchedLogLines>()
let exitHookInstalled = false

/**
 * How long a line may wait for others before the batch is written (a log line is then at most this
 * late), and how many bytes make a batch be written at once.
 */
export const LOG_BATCH_DELAY_MS = 20
export const LOG_BATCH_BYTES = 64 * 1024

/**
 * A pino destination that gathers the lines written within {@link LOG_BATCH_DELAY_MS} (or up to
 * {@link LOG_BATCH_BYTES}) and hands them to `sink` as one write. Under load the access log writes one
 * line per answered request; one `write` per line (a syscall on the libuv thread pool for an
 * asynchronous SonicBoom) was about 7 % of the CPU of a durable start, and one per event-loop turn
 * still 3.6 %. Lines still held when the process exits (`exit` event, e.g. `process.exit` after a
 * fatal error) are written synchronously first; a SIGKILL loses at most the last batch.
 *
 * @example
 * const logger = pino({ level: 'info' }, new BatchedLogLines(destination({ dest: 1, sync: false })))
 */
export class BatchedLogLines {
  readonly #sink: LineSink
  #lines: string[] = []
  #bytes = 0
  #timer: NodeJS.Timeout | undefined

  constructor(sink: LineSink) {
    this.#sink = sink
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.once('exit', flushHeldLines)
    }
  }

  /** Takes one line (pino's `write`); it reaches the sink within {@link LOG_BATCH_DELAY_MS}. */
  write(line: string): boolean {
    this.#bytes += line.length
    if (this.#lines.push(line) === 1) {
      holdingLines.add(this)
      this.#timer = setTimeout(handOver, LOG_BATCH_DELAY_MS, this)
      this.#timer.unref()
    }
    if (this.#bytes >= LOG_BATCH_BYTES) this.handOver()
    return true
  }

  /** Hands the held lines to the sink now, then flushes the sink (pino's `logger.flush(cb)`). */
  flush(callback?: (err?: Error | null) => void): void {
    this.handOver()
    if (this.#sink.flush) this.#sink.flush(callback)
    else callback?.()
  }

  /**
   * Writes everything synchronously: first what the sink holds, then the lines held here (straight to
   * the sink's file descriptor when it has one: an asynchronous sink would start a write that an
   * exiting process never finishes). When flushing the sink throws, the lines held here are still
   * written, then the error is rethrown.
   */
  flushSync(): void {
    const text = this.#take()
    let failed: { error: unknown } | undefined
    try {
      this.#sink.flushSync?.()
    } catch (error) {
      failed = { error }
    }
    if (text !== undefined) {
      const fd = this.#sink.fd
      if (typeof fd === 'number' && fd >= 0) writeAllSync(fd, Buffer.from(text))
      else {
        this.#sink.write(text)
        if (!failed) this.#sink.flushSync?.()
      }
    }
    if (failed) throw failed.error
  }

  /** Hands the lines held so far to the sink as one write. */
  handOver(): void {
    const text = this.#take()
    if (text !== undefined) this.#sink.write(text)
  }

  #take(): string | undefined {
    holdingLines.delete(this)
    if (this.#lines.length === 0) return undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#bytes = 0
    const text = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('')
    this.#lines = []
    return text
  }
}

/** `writeSync` until all of `data` is written; a non-blocking pipe that is full (EAGAIN) is retried a while. */
function writeAllSync(fd: number, data: Buffer): void {
  let offset = 0
  let retries = 0
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++retries > EXIT_WRITE_RETRIES) throw err
      Atomics.wait(RETRY_SLEEP, 0, 0, 1)
    }
  }
}

const EXIT_WRITE_RETRIES = 1000
const RETRY_SLEEP = new Int32Array(new SharedArrayBuffer(4))

function handOver(stream: BatchedLogLines): void {
  stream.handOver()
}

/**
 * Writes, synchronously, every line still held by a {@link BatchedLogLines}; runs on process exit.
 *
 * @example
 * process.once('exit', flushHeldLines)
 */
export function flushHeldLines(): void {
  for (const stream of [...holdingLines]) {
    try {
      stream.flushSync()
    } catch {
      // The process is exiting: a sink that cannot write (EPIPE, closed) loses the lines it had anyway.
    }
  }
}
