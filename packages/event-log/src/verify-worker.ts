// Worker-thread entry of `verifyLog`: runs `checkChunk` on chunks the main thread read into shared
// memory, so parsing and hashing (nearly all of the cost) use every core while the main thread keeps
// reading and does the in-order checks.
import { parentPort, workerData } from 'node:worker_threads'
import type { LogHead } from './recovery.js'
import type { VerifyRules } from './verify.js'
import { type ChunkResult, checkChunk, loadRecordCheck, type RecordCheck } from './verify-chunk.js'

/** Sent once as `workerData`. */
export interface VerifyWorkerData {
  seed: number
  expectedHead?: LogHead | undefined
  checkRecordModule?: string | undefined
  rules?: VerifyRules | undefined
}

/** One chunk to check: `buffer[0, end)` holds whole lines. */
export interface VerifyWorkerTask {
  id: number
  buffer: SharedArrayBuffer
  end: number
}

export type VerifyWorkerReply =
  | { id: number; result: ChunkResult }
  | { id: number; error: string; stack?: string | undefined }

const data = workerData as VerifyWorkerData
const port = parentPort
if (!port) throw new Error('verify-worker must run in a worker thread')

const checkRecord: Promise<RecordCheck | undefined> = data.checkRecordModule
  ? loadRecordCheck(data.checkRecordModule)
  : Promise.resolve(undefined)
// A failed import is reported with the first task, where the caller waits for a reply.
checkRecord.catch(() => {})

port.on('message', (task: VerifyWorkerTask) => {
  checkRecord
    .then((check) => {
      const result = checkChunk(Buffer.from(task.buffer, 0, task.end), task.end, {
        seed: data.seed,
        expectedHead: data.expectedHead,
        checkRecord: check,
        rules: data.rules,
      })
      port.postMessage({ id: task.id, result } satisfies VerifyWorkerReply, [
        result.kinds.buffer as ArrayBuffer,
      ])
    })
    .catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err))
      port.postMessage({ id: task.id, error: error.message, stack: error.stack } satisfies VerifyWorkerReply)
    })
})
