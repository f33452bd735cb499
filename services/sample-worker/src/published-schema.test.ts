import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { startWorker } from './server.js'

// The F3 contract as other teams see it: the published JSON Schema file, compiled by an independent
// validator in strict mode, must accept every record the worker writes and answers with.
const require = createRequire(import.meta.url)
const SCHEMA_FILE = require.resolve('@care/schemas/json-schema/SessionTaggedRecord.json')

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('sample worker records and the published SessionTaggedRecord schema', () => {
  it('every log line and the /infer answer pass SessionTaggedRecord.json under ajv --strict', async () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(
      JSON.parse(await readFile(SCHEMA_FILE, 'utf8')),
    )
    const dir = await mkdtemp(join(tmpdir(), 'sample-worker-schema-'))
    const dataDir = join(dir, 'worker')
    const worker = await startWorker({
      port: 0,
      host: '127.0.0.1',
      dataDir,
      logger: pino({ level: 'silent' }),
    })
    cleanups.push(async () => {
      await worker.close()
      await rm(dir, { recursive: true, force: true })
    })
    const res = await fetch(`${worker.url}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': '01JNC3G8Z9X7W6V5T4S3R2Q1P0' },
      body: JSON.stringify({
        schema_version: '1.1',
        record_id: '01JNC3G8Z9X7W6V5T4S3R2Q1AA',
        user_id: 'user-42',
        timestamp: '2026-03-01T12:00:00.000Z',
        source: 'ui',
        origin: 'human',
        performer_id: 'caregiver-7',
        text: 'Is it time for my medication?',
      }),
    })
    expect(res.status).toBe(200)
    const answer: unknown = await res.json()
    const eventsDir = join(dataDir, 'events')
    const files = (await readdir(eventsDir)).filter((name) => name.endsWith('.jsonl'))
    const lines = (await Promise.all(files.map((name) => readFile(join(eventsDir, name), 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
    expect(lines.length).toBeGreaterThanOrEqual(3)
    for (const record of [answer, ...lines]) {
      expect(validate(record) ? [] : validate.errors, JSON.stringify(record)).toEqual([])
    }
    const { session_id: _untagged, ...untagged } = lines[0]
    expect(validate(untagged)).toBe(false)
  })
})
