#!/usr/bin/env node
// `pnpm care-sessions <command>` from the repository root: the session-manager's `care-sessions` bin.
// pnpm runs root scripts in the repository root; INIT_CWD is where the user typed the command, so
// relative paths are taken from there.
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './running-file.mjs'

if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD)
await import(pathToFileURL(resolve(ROOT, 'services/session-manager/bin/care-sessions.js')).href)
