import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { EventLog } from '@care/event-log'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
// The sample worker is another service of this repository; the flow needs the real one.
import { createWorkerApp } from '../../../sample-worker/src/app.js'
import type { WorkerEvent } from '../../../sample-worker/src/worker-records.js'
import { captureIo, tempDirs } from '../audit/test-support/audit-fixtures.js'
import { loadConfig } from '../config.js'
import { startSessionManager } from '../server.js'
import { EXIT_OK, main } from './cli.js'
import { playSampleFlow } from './sample-flow.js'

const dirs = tempDirs()
const stops: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
  await dirs.cleanup()
})

async function startWorker(dataDir: string): Promise<string> {
  const { log: eventLog } = await EventLog.open<WorkerEvent>({ dir: dataDir })
  let url = ''
  const app = createWorkerApp({
    eventLog,
    logger: pino({ level: 'silent' }),
    downstreamUrl: () => `${url}/steps/annotate`,
  })
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stops.push(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    await eventLog.close()
  })
  return url
}

describe('the sample flow, end to end', () => {
  it('records start, worker calls, touch and end, and reads them back as one timeline', async () => {
    const root = await dirs.make()
    const dataDir = join(root, 'session-manager')
    const workerLog = join(root, 'worker')
    const running = await startSessionManager(loadConfig({ PORT: '0', CARE_DATA_DIR: dataDir }), {
      logger: pino({ level: 'silent' }),
    })
    stops.push(() => running.stop())
    await running.ready
    const sessionManagerUrl = `http://127.0.0.1:${running.port}`
    const workerUrl = await startWorker(workerLog)

    const steps: string[] = []
    const { sessionId, outputs } = await playSampleFlow({
      sessionManagerUrl,
      workerUrl,
      messages: ['Good morning.', 'Is it time for my medication?'],
      onStep: (step) => steps.push(step),
    })
    expect(outputs).toHaveLength(2)
    expect(steps.at(-1)).toBe('ended the session (reason: explicit)')

    // The CLI reads the live log without its lock, next to the running service.
    const out = captureIo()
    const code = await main(
      ['timeline', sessionId, '--data-dir', dataDir, '--with', workerLog, '--json'],
      out.io,
    )
    expect(out.stderr).toBe('')
    expect(code).toBe(EXIT_OK)
    const records = out.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(records.map((r) => `${r.source} ${r.event}`)).toEqual([
      'session_manager session.start',
      'sample_worker infer.received',
      'sample_worker annotate.done',
      'sample_worker infer.output',
      'sample_worker infer.received',
      'sample_worker annotate.done',
      'sample_worker infer.output',
      'session_manager session.touch',
      'session_manager session.end',
    ])
    expect(new Set(records.map((r) => r.session_id))).toEqual(new Set([sessionId]))
    const times = records.map((r) => Date.parse(String(r.timestamp)))
    expect([...times].sort((a, b) => a - b)).toEqual(times)

    // The HTTP side tells the same lifecycle story: the paged timeline and the export.
    const timeline = (await (await fetch(`${sessionManagerUrl}/sessions/${sessionId}/timeline`)).json()) as {
      events: { event: string }[]
    }
    expect(timeline.events.map((e) => e.event)).toEqual(['session.start', 'session.touch', 'session.end'])
    const exported = (await (await fetch(`${sessionManagerUrl}/export?session_id=${sessionId}`)).text())
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(exported.map((l) => l.event ?? 'manifest')).toEqual([
      'session.start',
      'session.touch',
      'session.end',
      'manifest',
    ])
  }, 30_000)
})
