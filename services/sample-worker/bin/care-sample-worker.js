#!/usr/bin/env node
// The `care-sample-worker` bin as linked at install: starts the built worker in dist/, and says what to do
// when it has not been built yet (a fresh clone links bins before anything is built).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/main.js', import.meta.url)
if (!existsSync(entry)) {
  console.error('care-sample-worker: not built yet; run `pnpm build` (or `pnpm start`) first.')
  process.exit(2)
}
await import(entry.href)
