import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { flushHeldLines, type LineSink, TurnBatchedLines } from './turn-batched-lines.js'

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

describe('TurnBatchedLines', () => {
  it('hands the lines of one event-loop turn to the sink as one write, in order, after the turn', async () => {
    const sink = recordingSink()
    const stream = new TurnBatchedLines(sink)
    stream.write('a\n')
    stream.write('b\n')
    stream.write('c\n')
    expect(sink.writes).toEqual([])
    await nextTurn()
    expect(sink.writes).toEqual(['a\nb\nc\n'])
    stream.write('d\n')
    await nextTurn()
    expect(sink.writes).toEqual(['a\nb\nc\n', 'd\n'])
  })

  it("carries pino's lines unchanged", async () => {
    const sink = recordingSink()
    const logger = pino({ base: undefined, timestamp: false }, new TurnBatchedLines(sink))
    logger.info({ request_id: 'r1' }, 'request')
    logger.warn('second')
    await nextTurn()
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
    const stream = new TurnBatchedLines(sink)
    stream.write('held\n')
    flushHeldLines()
    expect(sink.writes).toEqual(['held\n'])
    expect(sink.syncFlushes).toBe(2)
    flushHeldLines()
    expect(sink.writes).toEqual(['held\n'])
  })

  it('loses no line when the process exits in the same turn it logged', () => {
    // The built module in a child process (as dist/main.js runs it): build @care/session-manager first.
    const built = new URL('../../dist/observability/turn-batched-lines.js', import.meta.url)
    expect(existsSync(built), 'build @care/session-manager first').toBe(true)
    const moduleUrl = built.href
    const script = `
      const { TurnBatchedLines } = await import(${JSON.stringify(moduleUrl)})
      const { destination, pino } = await import('pino')
      const logger = pino({ base: undefined }, new TurnBatchedLines(destination({ dest: 1, sync: false })))
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
