#!/usr/bin/env node
// The `care-sessions` bin. The commands live in cli.ts so tests can call `main(argv, io)` directly.
import { main } from './cli.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error('care-sessions: unexpected error', err)
    process.exitCode = 1
  },
)
