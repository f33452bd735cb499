import { join } from 'node:path'
import { errnoOf, type LogFileSystem } from './file-system.js'

/** One `events-NNNNNN.jsonl` file of the log. */
export interface Segment {
  index: number
  name: string
  path: string
}

const SEGMENT_PATTERN = /^events-(\d{6,})\.jsonl$/

export function eventsDirOf(dataDir: string): string {
  return join(dataDir, 'events')
}

export function segmentName(index: number): string {
  return `events-${String(index).padStart(6, '0')}.jsonl`
}

export function segmentOf(eventsDir: string, index: number): Segment {
  const name = segmentName(index)
  return { index, name, path: join(eventsDir, name) }
}

/** The log's segment files in order; an absent directory is an empty log. */
export async function listSegments(fs: LogFileSystem, eventsDir: string): Promise<Segment[]> {
  let names: string[]
  try {
    names = await fs.readdir(eventsDir)
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return []
    throw err
  }
  const segments: Segment[] = []
  for (const name of names) {
    const match = SEGMENT_PATTERN.exec(name)
    if (match) segments.push({ index: Number(match[1]), name, path: join(eventsDir, name) })
  }
  return segments.sort((a, b) => a.index - b.index)
}
