// Long CPU work (encoding an index or a snapshot) written once as a generator that yields at points
// where it may pause, and run either at once or in slices that leave the event loop free.

/** Work that yields where it may pause and returns its result. */
export type SlicedWork<T> = Generator<void, T>

/**
 * Runs `work` to its end without pausing.
 *
 * @example
 * const bytes = finishNow(encoding())
 */
export function finishNow<T>(work: SlicedWork<T>): T {
  for (;;) {
    const step = work.next()
    if (step.done) return step.value
  }
}

/**
 * Runs `work` in slices of about `sliceMs` of CPU, giving the event loop a turn (`setImmediate`)
 * between them, so other requests are served while it runs.
 *
 * @example
 * const bytes = await finishInSlices(encoding(), 8)
 */
export async function finishInSlices<T>(work: SlicedWork<T>, sliceMs: number): Promise<T> {
  for (;;) {
    const sliceEnds = performance.now() + sliceMs
    for (;;) {
      const step = work.next()
      if (step.done) return step.value
      if (performance.now() >= sliceEnds) break
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}
