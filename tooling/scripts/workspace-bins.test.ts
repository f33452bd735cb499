import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n'))

/** Every workspace package.json that declares bins, with its bins as repository paths. */
function workspaceBins(): { pkg: string; bins: Record<string, string> }[] {
  return [...tracked]
    .filter((path) => /^(packages|services|tooling)\/[^/]+\/package\.json$/.test(path))
    .map((path) => {
      const { bin } = JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as { bin?: Record<string, string> }
      const dir = dirname(path)
      const bins = Object.fromEntries(
        Object.entries(bin ?? {}).map(([name, to]) => [name, normalize(join(dir, to))]),
      )
      return { pkg: path, bins }
    })
    .filter(({ bins }) => Object.keys(bins).length > 0)
}

describe('workspace bins', () => {
  // pnpm links bins at install, before anything is built: a bin pointing into dist/ is missing on a fresh
  // clone and pnpm warns "Failed to create bin". Each bin is a committed launcher that says how to build.
  it('point at committed launchers with a node shebang, never at build output', () => {
    const all = workspaceBins()
    expect(all.map(({ pkg }) => pkg)).toEqual(
      expect.arrayContaining([
        'services/sample-worker/package.json',
        'services/session-manager/package.json',
      ]),
    )
    for (const { pkg, bins } of all) {
      for (const [name, path] of Object.entries(bins)) {
        expect(tracked.has(path), `${pkg} bin ${name} → ${path} is not a committed file`).toBe(true)
        expect(readFileSync(join(ROOT, path), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
      }
    }
  })
})
