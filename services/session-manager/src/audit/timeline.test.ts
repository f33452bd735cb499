import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { StoredEvent } from '../store/event-store.js'
import { tempDirs } from './test-support/audit-fixtures.js'
import { mergeTimeline, readWorkerRecords, WorkerLogError } from './timeline.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const SESSION = '01JS0000000000000000000001'
const T = (ms: number) => new Date(Date.parse('2026-03-01T12:00:00.000Z') + ms).toISOString()

function lifecycle(seq: number, event: string, ms: number): StoredEvent {
  return {
    seq,
    event,
    timestamp: T(ms),
    session_id: SESSION,
    source: 'session_manager',
  } as unknown as StoredEvent
}
function worker(line: number, event: string, ms: number | string) {
  return {
    line,
    record: {
      event,
      timestamp: typeof ms === 'string' ? ms : T(ms),
      session_id: SESSION,
      source: 'sample_worker',
    },
  }
}
const names = (entries: ReturnType<typeof mergeTimeline>) => entries.map((e) => e.event)

describe('mergeTimeline', () => {
  it('interleaves lifecycle events and worker records by time', () => {
    const merged = mergeTimeline(
      [lifecycle(1, 'session.start', 0), lifecycle(2, 'session.touch', 30), lifecycle(3, 'session.end', 60)],
      [{ file: 'w.jsonl', records: [worker(1, 'infer.received', 10), worker(2, 'infer.output', 40)] }],
    )
    expect(names(merged)).toEqual([
      'session.start',
      'infer.received',
      'session.touch',
      'infer.output',
      'session.end',
    ])
    expect(merged[1]!.at).toEqual({ file: 'w.jsonl', line: 1 })
    expect(merged[0]!.at).toEqual({ seq: 1 })
  })

  it('puts session.start first and session.end last among records with the same timestamp', () => {
    const merged = mergeTimeline(
      [lifecycle(1, 'session.start', 5), lifecycle(2, 'session.end', 9)],
      [{ file: 'w.jsonl', records: [worker(1, 'infer.received', 5), worker(2, 'infer.output', 9)] }],
    )
    expect(names(merged)).toEqual(['session.start', 'infer.received', 'infer.output', 'session.end'])
  })

  it('puts a touch before a worker record at the same time, then orders worker logs as given and by line', () => {
    const merged = mergeTimeline(
      [lifecycle(1, 'session.start', 0), lifecycle(2, 'session.touch', 7)],
      [
        { file: 'b.jsonl', records: [worker(4, 'b.second', 7), worker(2, 'b.first', 7)] },
        { file: 'a.jsonl', records: [worker(1, 'a.only', 7)] },
      ],
    )
    expect(names(merged)).toEqual(['session.start', 'session.touch', 'b.first', 'b.second', 'a.only'])
  })

  it('compares timestamps as instants, whatever their zone notation', () => {
    const merged = mergeTimeline(
      [lifecycle(1, 'session.start', 0)],
      [
        {
          file: 'w.jsonl',
          records: [worker(1, 'later', '2026-03-01T14:00:01+02:00'), worker(2, 'earlier', T(500))],
        },
      ],
    )
    expect(names(merged)).toEqual(['session.start', 'earlier', 'later'])
  })

  it('is the same whatever order the inputs come in', () => {
    const events = [
      lifecycle(1, 'session.start', 0),
      lifecycle(2, 'session.touch', 3),
      lifecycle(3, 'session.end', 3),
    ]
    const records = [worker(1, 'x', 3), worker(2, 'y', 3), worker(3, 'z', 1)]
    const a = mergeTimeline(events, [{ file: 'w', records }])
    const b = mergeTimeline([...events].reverse(), [{ file: 'w', records: [...records].reverse() }])
    expect(names(b)).toEqual(names(a))
    expect(names(a)).toEqual(['session.start', 'z', 'session.touch', 'x', 'y', 'session.end'])
  })
})

describe('readWorkerRecords', () => {
  it('returns the lines of one session with their line numbers and skips blank lines and other sessions', async () => {
    const dir = await dirs.make()
    const file = join(dir, 'events.jsonl')
    await writeFile(
      file,
      [
        JSON.stringify({ session_id: SESSION, event: 'a' }),
        '',
        JSON.stringify({ session_id: '01JS0000000000000000000002', event: 'b' }),
        JSON.stringify({ session_id: SESSION, event: 'c' }),
      ].join('\n'),
    )
    expect(await readWorkerRecords(file, SESSION)).toEqual([
      { line: 1, record: { session_id: SESSION, event: 'a' } },
      { line: 4, record: { session_id: SESSION, event: 'c' } },
    ])
  })

  it('names the file and line of a line that is not JSON', async () => {
    const dir = await dirs.make()
    const file = join(dir, 'events.jsonl')
    await writeFile(file, `${JSON.stringify({ session_id: SESSION })}\n{"session_id":"${SESSION}",\n`)
    await expect(readWorkerRecords(file, SESSION)).rejects.toThrow(WorkerLogError)
    await expect(readWorkerRecords(file, SESSION)).rejects.toThrow(`${file}:2: line is not valid JSON`)
  })
})
