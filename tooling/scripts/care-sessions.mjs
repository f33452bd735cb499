#!/usr/bin/env node
// `pnpm care-sessions <command>` from the repository root: the session-manager's `care-sessions`
// bin, once it is built. Relative paths are taken from the directory pnpm was started in.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './running-file.mjs'

const bin = resolve(ROOT, 'services/session-manager/dist/cli/main.js')
if (!existsSync(bin)) {
  console.error(
    'care-sessions: the session-manager is not built yet; run `pnpm build` (or `pnpm start`) first.',
  )
  process.exit(2)
}
// pnpm runs root scripts in the repository root; INIT_CWD is where the user typed the command.
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD)
await import(pathToFileURL(bin).href)
