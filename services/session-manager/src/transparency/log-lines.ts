import { join } from 'node:path'
import { type LogFileSystem, nodeFileSystem } from '@care/event-log'

const SEGMENT = /^events-(\d{6,})\.jsonl$/
const NEWLINE = 0x0a
const CHUNK = 1024 * 1024

/**
 * The exact bytes of every complete line of the log under `dataDir` (`events/events-NNNNNN.jsonl`, in
 * segment order, without the newline): the leaves of the log's Merkle tree. Reads the files directly
 * (no lock, no parsing), so it sees what an auditor copying the directory sees; a final line without
 * newline (a write in progress or a torn tail) is not a leaf.
 *
 * @example
 * for await (const line of logLines('/var/lib/care')) range.appendEntry(line)
 */
export async function* logLines(dataDir: string, fs: LogFileSystem = nodeFileSystem): AsyncGenerator<Buffer> {
  const eventsDir = join(dataDir, 'events')
  let names: string[]
  try {
    names = await fs.readdir(eventsDir)
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return
    throw err
  }
  const segments = names
    .map((name) => ({ name, match: SEGMENT.exec(name) }))
    .filter((s) => s.match !== null)
    .sort((a, b) => Number(a.match![1]) - Number(b.match![1]))
  for (const { name } of segments) {
    const handle = await fs.open(join(eventsDir, name), 'read')
    try {
      let carry = Buffer.alloc(0)
      let position = 0
      for (;;) {
        const chunk = Buffer.allocUnsafe(CHUNK)
        const bytesRead = await handle.read(chunk, 0, CHUNK, position)
        if (bytesRead === 0) break
        position += bytesRead
        const data =
          carry.length > 0
            ? Buffer.concat([carry, chunk.subarray(0, bytesRead)])
            : chunk.subarray(0, bytesRead)
        let start = 0
        for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
          yield data.subarray(start, nl)
          start = nl + 1
        }
        carry = Buffer.from(data.subarray(start))
      }
    } finally {
      await handle.close()
    }
  }
}
