import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const exec = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

type Result = { code: number; stdout: string; stderr: string }

async function pnpm(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec('pnpm', ['--silent', ...args], { cwd: ROOT })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const { code, stdout, stderr } = err as Result
    return { code, stdout, stderr }
  }
}

describe('care-sessions from the repository root', () => {
  it('`pnpm care-sessions <command>` runs the CLI, help exits 0', async () => {
    const help = await pnpm(['care-sessions', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('care-sessions db <migrate|verify|checkpoint|import|export>')
    const dbHelp = await pnpm(['care-sessions', 'db', 'import', '--help'])
    expect(dbHelp).toMatchObject({ code: 0 })
    expect(dbHelp.stdout).toContain('Usage: care-sessions db import <data-dir>')
  })

  it('an unknown flag is one line and a --help hint, exit 2', async () => {
    const bad = await pnpm(['care-sessions', 'verify', '--bogus'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe("care-sessions: Unknown option '--bogus'\nTry 'care-sessions verify --help'.\n")
  })
})

describe('the session-manager package', () => {
  it('declares the care-sessions and care-session-manager bins, built with a node shebang', async () => {
    const pkgUrl = new URL('../../services/session-manager/package.json', import.meta.url)
    const pkg = JSON.parse(await readFile(pkgUrl, 'utf8')) as { bin: Record<string, string> }
    expect(Object.keys(pkg.bin).sort()).toEqual(['care-session-manager', 'care-sessions'])
    for (const path of Object.values(pkg.bin)) {
      const text = await readFile(new URL(path, pkgUrl), 'utf8')
      expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true)
    }
  })

  it('gives `npx care-sessions` and `pnpm exec care-sessions` in the repository (the bin is linked at install)', async () => {
    for (const [command, args] of [
      ['npx', ['--no-install', 'care-sessions', '--help']],
      ['pnpm', ['exec', 'care-sessions', '--help']],
    ] as const) {
      const run = await exec(command, [...args], { cwd: ROOT })
      expect(run.stdout).toContain('care-sessions db <migrate|verify|checkpoint|import|export>')
    }
  })
})
