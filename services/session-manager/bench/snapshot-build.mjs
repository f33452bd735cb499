#!/usr/bin/env node
// Freezes the current build of the service for a later A/B (issue 18): copies dist/ and the built
// dist/ of every @care/* workspace package it imports into bench-results/builds/<name>/ (git-ignored),
// so rebuilding or switching branches afterwards does not change it. Their third-party dependencies
// resolve through links into the packages' own node_modules.
//   pnpm --filter @care/session-manager... build      # on the commit to keep (e.g. main)
//   node bench/snapshot-build.mjs main                 # -> bench-results/builds/main
//   (check out / build the other commit)
//   node bench/start-ab.mjs --base bench-results/builds/main/dist
import { cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'

const name = process.argv[2]
if (!name || !/^[\w.-]+$/.test(name)) {
  console.error('usage: node bench/snapshot-build.mjs <name>   (letters, digits, . _ -)')
  process.exit(2)
}
const service = new URL('..', import.meta.url).pathname
const target = join(service, 'bench-results', 'builds', name)
if (!existsSync(join(service, 'dist', 'main.js'))) {
  console.error('dist/main.js is missing: build @care/session-manager (and its packages) first')
  process.exit(1)
}
rmSync(target, { recursive: true, force: true })
mkdirSync(target, { recursive: true })
// The service as it is laid out here: dist/ beside its package.json (main.js reads the version there).
cpSync(join(service, 'dist'), join(target, 'dist'), { recursive: true })
cpSync(join(service, 'package.json'), join(target, 'package.json'))
const scope = join(service, 'node_modules', '@care')
for (const pkg of readdirSync(scope)) {
  const source = realpathSync(join(scope, pkg))
  if (!existsSync(join(source, 'dist'))) continue // tooling without a build (tsconfig, test kit)
  const copy = join(target, 'node_modules', '@care', pkg)
  mkdirSync(copy, { recursive: true })
  cpSync(join(source, 'package.json'), join(copy, 'package.json'))
  cpSync(join(source, 'dist'), join(copy, 'dist'), { recursive: true })
  // Third-party dependencies through links; @care/* ones resolve to the frozen copies above.
  const deps = join(source, 'node_modules')
  if (!existsSync(deps)) continue
  mkdirSync(join(copy, 'node_modules'))
  for (const entry of readdirSync(deps)) {
    if (entry !== '@care' && entry !== '.bin')
      symlinkSync(join(deps, entry), join(copy, 'node_modules', entry))
  }
}
console.log(`frozen build: ${target} (use --base ${join(target, 'dist')})`)
