/**
 * A one-line progress bar with throughput for long CLI runs. It draws only when `stream.isTTY`, so
 * piped or scripted runs print nothing but results; redraws are throttled to ten a second.
 *
 * @example
 * const progress = createProgress(process.stderr, 'verify')
 * await verifyDataDir(dir, { onProgress: (done, total) => progress.update(done, total, 'bytes') })
 * progress.finish()
 */
export interface Progress {
  update(done: number, total: number | undefined, unit: 'bytes' | 'events', label?: string): void
  finish(): void
}

const WIDTH = 24
const REDRAW_MS = 100

/**
 * Creates the progress bar for one run (a no-op off a terminal).
 *
 * @example
 * const progress = createProgress(io.stderr, 'export')
 */
export function createProgress(
  stream: { isTTY?: boolean; write(text: string): unknown },
  label: string,
): Progress {
  if (!stream.isTTY) return { update() {}, finish() {} }
  const started = performance.now()
  let lastDraw = 0
  let drawn = false
  return {
    update(done, total, unit, phase) {
      const now = performance.now()
      if (now - lastDraw < REDRAW_MS && (total === undefined || done < total)) return
      lastDraw = now
      const seconds = Math.max((now - started) / 1000, 0.001)
      const rate =
        unit === 'bytes'
          ? `${(done / seconds / 1e6).toFixed(1)} MB/s`
          : `${Math.round(done / seconds).toLocaleString('en')} events/s`
      const amount =
        unit === 'bytes' ? `${(done / 1e6).toFixed(1)} MB` : `${done.toLocaleString('en')} events`
      let bar = ''
      if (total !== undefined && total > 0) {
        const fraction = Math.min(1, done / total)
        const filled = Math.round(fraction * WIDTH)
        bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% `
      }
      stream.write(`\r\x1b[K${label}${phase ? ` ${phase}` : ''} ${bar}${amount}  ${rate}`)
      drawn = true
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K')
      drawn = false
    },
  }
}
