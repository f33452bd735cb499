import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { startWorker } from './server.js'
import { WorkerInferInput } from './worker-records.js'

describe('the sample worker OpenAPI document and instance id', () => {
  it('serves /openapi.json built from the schemas that validate /infer, and names its instance in /healthz', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-openapi-'))
    const worker = await startWorker({
      port: 0,
      host: '127.0.0.1',
      dataDir: join(dir, 'worker'),
      logger: pino({ level: 'silent' }),
      app: { instanceId: 'worker-instance-1', version: '9.9.9' },
    })
    try {
      const doc = (await (await fetch(`${worker.url}/openapi.json`)).json()) as {
        openapi: string
        info: { version: string }
        paths: Record<string, Record<string, { parameters?: { name: string }[] }>>
        components: { schemas: Record<string, unknown> }
      }
      expect(doc.openapi).toBe('3.1.0')
      expect(doc.info.version).toBe('9.9.9')
      expect(Object.keys(doc.paths)).toEqual(['/infer', '/steps/annotate', '/healthz', '/openapi.json'])
      expect(doc.paths['/infer']!.post!.parameters!.map((p) => p.name)).toEqual(['x-session-id'])
      expect(doc.components.schemas.WorkerInferInput).toEqual(JSON.parse(JSON.stringify(WorkerInferInput)))
      expect(await (await fetch(`${worker.url}/healthz`)).json()).toEqual({
        status: 'ok',
        instance_id: 'worker-instance-1',
      })
    } finally {
      await worker.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
