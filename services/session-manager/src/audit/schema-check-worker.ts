// Worker-thread entry of `verifyDataDir`: the schema pass runs here while the main thread runs
// `verifyLog`, so checking schemas costs (almost) no extra wall time on a machine with two cores.
import { parentPort, workerData } from 'node:worker_threads'
import { checkLogSchemas } from './schema-check.js'

const { dir } = workerData as { dir: string }
checkLogSchemas(dir).then(
  (result) => parentPort?.postMessage({ ok: true, result }),
  (err: unknown) =>
    parentPort?.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) }),
)
