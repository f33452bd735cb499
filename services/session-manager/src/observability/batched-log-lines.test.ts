import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  BatchedLogLines,
  flushHeldLines,
  type LineSink,
  LOG_BATCH_BYTES,
  LOG_BATCH_DELAY_MS,
} from './batched-log-lines.js'

function recordingSink(): LineSink & { writes: string[]; syncFlushes: number } {
  const sink = {
    writes: [] as string[],
    syncFlushes: 0,
    write(text: string) {
      sink.writes.push(text)
      return true
    },
    flushSync() {
      sink.syncFlushes++
    },
  }
  return sink
}

describe('BatchedLogLines', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('hands the lines of one batch delay to the sink as one write, in order, and no later', () => {
    const sink = recordingSink()
    const stream = new BatchedLogLines(sink)
    stream.write('a\n')
    vi.advanceTimersByTime(LOG_BATCH_DELAY_MS - 1)
    stream.write('b\n')
    stream.write('c\n')
    expect(sink.writes).toEqual([])
    vi.advanceTimersByTime(1)
    expect(sink.writes).toEqual(['a\nb\nc\n'])
    stream.write('d\n')
    vi.advanceTimersByTime(LOG_BATCH_DELAY_MS)
    expect(sink.writes).toEqual(['a\nb\nc\n', 'd\n'])
    vi.advanceTimersByTime(10 * LOG_BATCH_DELAY_MS)
    expect(sink.writes).toHaveLength(2)
  })

  it('writes a batch at once when it reaches the batch size', () => {
    const sink = recordingSink()
    const stream = new BatchedLogLines(sink)
    const line = `${'x'.repeat(1023)}\n`
    for (let i = 0; i < LOG_BATCH_BYTES / 1024 - 1; i++) stream.write(line)
    expect(sink.writes).toEqual([])
    stream.write(line)
    expect(sink.writes).toEqual([line.repeat(LOG_BATCH_BYTES / 1024)])
    stream.write('next\n')
    vi.advanceTimersByTime(LOG_BATCH_DELAY_MS)
    expect(sink.writes.at(-1)).toBe('next\n')
  })

  it("carries pino's lines unchanged", () => {
    const sink = recordingSink()
    const logger = pino({ base: undefined, timestamp: false }, new BatchedLogLines(sink))
    logger.info({ request_id: 'r1' }, 'request')
    logger.warn('second')
    vi.advanceTimersByTime(LOG_BATCH_DELAY_MS)
    expect(sink.writes).toHaveLength(1)
    expect(
      sink.writes[0]!.trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { level: 30, request_id: 'r1', msg: 'request' },
      { level: 40, msg: 'second' },
    ])
  })

  it('writes held lines synchronously when flushed on exit, after what the sink already held', () => {
    const sink = recordingSink()
    const stream = new BatchedLogLines(sink)
    stream.write('held\n')
    flushHeldLines()
    expect(sink.writes).toEqual(['held\n'])
    expect(sink.syncFlushes).toBe(2)
    flushHeldLines()
    expect(sink.writes).toEqual(['held\n'])
  })

  it('still writes the held lines when flushing the sink throws, then reports the error', () => {
    const sink = recordingSink()
    sink.flushSync = () => {
      throw new Error('sonic boom is not ready yet')
    }
    const stream = new BatchedLogLines(sink)
    stream.write('held\n')
    expect(() => stream.flushSync()).toThrow(/not ready/)
    expect(sink.writes).toEqual(['held\n'])
  })

  it('loses no line when the process exits right after logging', () => {
    // The built module in a child process (as dist/main.js runs it): build @care/session-manager first.
    const built = new URL('../../dist/observability/batched-log-lines.js', import.meta.url)
    expect(existsSync(built), 'build @care/session-manager first').toBe(true)
    const moduleUrl = built.href
    const script = `
      const { BatchedLogLines } = await import(${JSON.stringify(moduleUrl)})
      const { destination, pino } = await import('pino')
      const logger = pino({ base: undefined }, new BatchedLogLines(destination({ dest: 1, sync: false })))
      for (let i = 0; i < 2000; i++) logger.info({ i }, 'line')
      process.exit(0)
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url).pathname,
      timeout: 20_000,
    })
    expect(child.stderr).toBe('')
    const lines = child.stdout.trim().split('\n')
    expect(lines).toHaveLength(2000)
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ i: 1999, msg: 'line' })
  })
})
