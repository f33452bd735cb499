#!/usr/bin/env node
// The `care-session-manager` bin as installed: starts the built service in dist/, and says what to do
// when the package has not been built yet (a fresh clone).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/main.js', import.meta.url)
if (!existsSync(entry)) {
  console.error('care-session-manager: not built yet; run `pnpm build` (or `pnpm start`) first.')
  process.exit(2)
}
await import(entry.href)
