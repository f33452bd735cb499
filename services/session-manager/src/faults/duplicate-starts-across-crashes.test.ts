import { readLog } from '@care/event-log'
import type { CrashKind } from '@care/event-log/testing'
import { fcRuns, seededRandom, timeoutMs } from '@care/test-kit'
import fc from 'fast-check'
import { monotonicFactory } from 'ulid'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../sessions/test-support/memory-event-store.js'
import { requestBody } from './test-support/http-workload.js'
import { type BootedService, bootService, DATA_DIR, freshDisk } from './test-support/service-harness.js'

interface Answer {
  status: number
  body: Record<string, unknown>
}

// Issue #11, defect 4: under SIGKILL load with concurrent duplicate starts, two answers for one
// record_id were both 201. Here 32 clients each send one start twice at once (in one group commit
// with the others), the machine crashes at a drawn file-system call (in the middle of a group
// commit, of a rotation or of recovery itself), restarts, and every pair not yet answered 2xx is
// sent again, twice at once, to the new incarnation, which also serves new pairs and gets every
// answered start once more (a late duplicate, answered from the log after a restart).
const CLIENTS = 32

async function send(booted: BootedService, body: Record<string, unknown>): Promise<Answer> {
  const res = await booted.app.request('/sessions.start', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('concurrent duplicate starts across crashes and restarts', () => {
  it(
    'answers each record_id with at most one 201, every 2xx with the same body, and stores one start for it',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer(),
          fc.constantFrom<CrashKind>('process-kill', 'power-loss', 'torn'),
          fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 2, maxLength: 4 }),
          async (seed, kind, crashPoints) => {
            const disk = await freshDisk(seededRandom(seed))
            const clock = new ManualClock()
            const newId = monotonicFactory(seededRandom(seed ^ 0x5eed))
            const answers = new Map<string, Answer[]>()
            const bodies = new Map<string, Record<string, unknown>>()
            const unanswered = new Set<string>()

            const pairRound = async (booted: BootedService, fresh: number) => {
              for (let i = 0; i < fresh; i++) {
                clock.advance(1)
                const body = requestBody(clock, newId)
                bodies.set(body.record_id as string, body)
                unanswered.add(body.record_id as string)
              }
              // Late duplicates: a record answered 2xx, sent once more (after a restart, from the log).
              const late = [...answers.keys()].filter((recordId) => !unanswered.has(recordId))
              await Promise.all([
                ...late.map(async (recordId) => {
                  const answer = await send(booted, bodies.get(recordId)!)
                  expect([200, 503], JSON.stringify(answer.body)).toContain(answer.status)
                  answers.get(recordId)!.push(answer)
                }),
                ...[...unanswered].map(async (recordId) => {
                  const body = bodies.get(recordId)!
                  const pair = await Promise.all([send(booted, body), send(booted, body)])
                  for (const answer of pair) {
                    // A crash may leave a request unanswerable: 503 (storage) is the only refusal allowed.
                    expect([200, 201, 503], JSON.stringify(answer.body)).toContain(answer.status)
                    answers.set(recordId, [...(answers.get(recordId) ?? []), answer])
                    if (answer.status < 300) unanswered.delete(recordId)
                  }
                }),
              ])
            }

            for (const crashAt of crashPoints) {
              disk.crashAt(crashAt)
              let booted: BootedService | undefined
              try {
                booted = await bootService({ fs: disk, dir: DATA_DIR, clock, maxFileBytes: 1500 })
              } catch (err) {
                if (!disk.crashed) throw err
              }
              if (booted) {
                await pairRound(booted, CLIENTS)
                if (!disk.crashed) await pairRound(booted, CLIENTS / 4)
              }
              if (!disk.crashed) disk.crash()
              // The killed process's memory (and its hold on LOCK) goes with it; here the process lives on.
              await booted?.stop()
              disk.reboot(kind)
            }
            // A last, clean incarnation answers every pair still waiting.
            const booted = await bootService({ fs: disk, dir: DATA_DIR, clock, maxFileBytes: 1500 })
            await pairRound(booted, 0)
            expect(await booted.stop()).toBeUndefined()
            expect(unanswered.size).toBe(0)

            const stored = new Map<string, string[]>()
            for await (const { record } of readLog(DATA_DIR, { fs: disk })) {
              if (record.event !== 'session.start') continue
              const recordId = record.input_record_id as string
              stored.set(recordId, [...(stored.get(recordId) ?? []), record.session_id as string])
            }
            for (const [recordId, list] of answers) {
              const ok = list.filter((a) => a.status < 300)
              expect(
                ok.filter((a) => a.status === 201).length,
                `${recordId}: ${JSON.stringify(list)}`,
              ).toBeLessThanOrEqual(1)
              for (const answer of ok) expect(answer.body).toEqual(ok[0]!.body)
              expect(stored.get(recordId), recordId).toEqual([ok[0]!.body.session_id])
            }
          },
        ),
        fcRuns('duplicate starts across crashes', 6, 100),
      )
    },
    timeoutMs(120_000, 3_600_000),
  )
})
