#!/usr/bin/env node
// The `care-sessions` bin as installed (node_modules/.bin, npx, a global install): runs the built CLI
// in dist/, and says what to do when the package has not been built yet (a fresh clone).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  console.error(
    'care-sessions: the session-manager is not built yet; run `pnpm build` (or `pnpm start`) first.',
  )
  process.exit(2)
}
await import(entry.href)
