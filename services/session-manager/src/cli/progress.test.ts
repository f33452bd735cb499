import { describe, expect, it } from 'vitest'
import { createProgress } from './progress.js'

function stream(isTTY: boolean) {
  const writes: string[] = []
  return { isTTY, writes, write: (text: string) => writes.push(text) }
}

describe('createProgress', () => {
  it('draws nothing off a terminal', () => {
    const out = stream(false)
    const progress = createProgress(out, 'verify')
    progress.update(50, 100, 'bytes')
    progress.update(100, 100, 'bytes')
    progress.finish()
    expect(out.writes).toEqual([])
  })

  it('draws a bar with percentage and throughput on a terminal, and clears it when finished', () => {
    const out = stream(true)
    const progress = createProgress(out, 'export')
    progress.update(2_000_000, 4_000_000, 'bytes')
    progress.update(4_000_000, 4_000_000, 'bytes')
    const last = out.writes.at(-1)!
    expect(last.startsWith('\r\x1b[K')).toBe(true)
    expect(last.slice(4)).toMatch(/^export \[#{24}\] 100% 4\.0 MB {2}[\d.]+ MB\/s$/)
    progress.update(1234, undefined, 'events', 'scan')
    progress.finish()
    expect(out.writes.at(-1)).toBe('\r\x1b[K')
  })
})
