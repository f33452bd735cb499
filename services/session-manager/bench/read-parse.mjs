// Baseline for restart-to-ready and verify: read every log file and JSON.parse every line,
// nothing else, the fast way (whole 64 MiB segments, split on newlines).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = join(process.argv[2], 'events')
let lines = 0
for (const name of readdirSync(dir)
  .filter((n) => n.endsWith('.jsonl'))
  .sort()) {
  const text = readFileSync(join(dir, name), 'utf8')
  let start = 0
  for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
    JSON.parse(text.slice(start, end))
    lines++
    start = end + 1
  }
}
console.log(JSON.stringify({ lines, msg: 'parsed' }))
