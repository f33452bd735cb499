#!/usr/bin/env node
// The `care-sessions` bin. The commands live in cli.ts so tests can call `main(argv, io)` directly.
import { main } from './cli.js'

// `care-sessions export | head`: a reader that stops early is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    process.exit(process.exitCode ?? 0)
  })
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error('care-sessions: unexpected error', err)
    process.exitCode = 1
  },
)
