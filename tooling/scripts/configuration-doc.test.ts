import { readdir, readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'

const DOC = new URL('../../docs/configuration.md', import.meta.url)
const SERVICE_SOURCES = ['session-manager/src', 'sample-worker/src']
const SCRIPTS = ['start.mjs', 'demo.mjs', 'running-file.mjs', 'care-sessions.mjs']

interface Setting {
  name: string
  default: string
}

/** The rows (name, default) of the first table in the section whose heading starts with `heading`. */
async function documentedSettings(heading: string): Promise<Setting[]> {
  const lines = (await readFile(DOC, 'utf8')).split('\n')
  const start = lines.findIndex((line) => line.startsWith(`## ${heading}`))
  expect(start, `docs/configuration.md has a "## ${heading}" section`).toBeGreaterThan(-1)
  const rows: Setting[] = []
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break
    if (!line.startsWith('|')) {
      if (rows.length > 0) break
      continue
    }
    const cells = line.split('|').map((cell) => cell.trim().replace(/^`|`$/g, ''))
    if (cells[1] === 'variable' || /^-+$/.test(cells[1] ?? '')) continue
    rows.push({ name: cells[1] ?? '', default: cells[2] ?? '' })
  }
  return rows
}

/** The settings table a built service exports (the services' own tests tie it to the variables they read). */
async function exportedSettings(module: string, name: string): Promise<Setting[]> {
  const loaded = (await import(new URL(`../../services/${module}`, import.meta.url).href)) as Record<
    string,
    readonly Setting[]
  >
  return (loaded[name] ?? []).map((s) => ({ name: s.name, default: s.default }))
}

describe('docs/configuration.md lists every variable of every service, as the code reads it', () => {
  it('session-manager: the rows are SESSION_MANAGER_SETTINGS, in order, with their defaults', async () => {
    expect(await documentedSettings('session-manager')).toEqual(
      await exportedSettings('session-manager/dist/config.js', 'SESSION_MANAGER_SETTINGS'),
    )
  })

  it('sample worker: the rows are SAMPLE_WORKER_SETTINGS, in order, with their defaults', async () => {
    expect(await documentedSettings('sample worker')).toEqual(
      await exportedSettings('sample-worker/dist/config.js', 'SAMPLE_WORKER_SETTINGS'),
    )
  })

  it('pnpm start and pnpm demo: every variable the scripts read is documented, their own in their table', async () => {
    const read = new Set<string>()
    for (const script of SCRIPTS) {
      const source = await readFile(new URL(`./${script}`, import.meta.url), 'utf8')
      for (const m of source.matchAll(/env(?:\.|\[')([A-Z][A-Z0-9_]*)/g)) read.add(m[1] ?? '')
      for (const m of source.matchAll(/portSetting\('([A-Z_]+)'/g)) read.add(m[1] ?? '')
    }
    read.delete('INIT_CWD') // set by pnpm, not by people
    const own = (await documentedSettings('`pnpm start`')).map((s) => s.name)
    const services = [
      ...(await documentedSettings('session-manager')),
      ...(await documentedSettings('sample worker')),
    ].map((s) => s.name)
    for (const name of read) expect([...own, ...services], `${name} is documented`).toContain(name)
    expect(own.every((name) => read.has(name))).toBe(true)
    expect(own).toEqual(['SESSION_MANAGER_PORT', 'SAMPLE_WORKER_PORT', 'CARE_DATA_ROOT', 'CARE_RUNNING_FILE'])
  })

  it("every CARE_* variable read anywhere in the services' source is a row of docs/configuration.md", async () => {
    const doc = await readFile(DOC, 'utf8')
    const documented = new Set([...doc.matchAll(/^\| `(CARE_[A-Z0-9_]+)`/gm)].map((m) => m[1]))
    const read = new Map<string, string>()
    for (const dir of SERVICE_SOURCES) {
      for (const file of await serviceSourceFiles(new URL(`../../services/${dir}/`, import.meta.url))) {
        for (const name of careVariablesRead(await readFile(file, 'utf8'))) read.set(name, file.pathname)
      }
    }
    expect(read.size, 'the scan finds the variables the services read').toBeGreaterThan(10)
    const undocumented = [...read].filter(([name]) => !documented.has(name)).map(([n, f]) => `${n} (${f})`)
    expect(undocumented).toEqual([])
  })
})

/** The production source files under `dir` (no tests, no test support, no .d.ts). */
async function serviceSourceFiles(dir: URL): Promise<URL[]> {
  const files: URL[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (entry.name !== 'test-support' && entry.name !== 'node_modules')
        files.push(...(await serviceSourceFiles(new URL(`${entry.name}/`, dir))))
    } else if (/\.ts$/.test(entry.name) && !/\.(test|fuzz)\.ts$|\.d\.ts$/.test(entry.name)) {
      files.push(new URL(entry.name, dir))
    }
  }
  return files
}

/** The CARE_* names a source reads (`env.X`, `env['X']`, a settings row `name: 'X'`), comments left out. */
function careVariablesRead(source: string): string[] {
  const code = source
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line))
    .join('\n')
  const names = new Set<string>()
  for (const m of code.matchAll(/env(?:\.|\[\s*['"])(CARE_[A-Z0-9_]+)/g)) names.add(m[1] ?? '')
  for (const m of code.matchAll(/name:\s*'(CARE_[A-Z0-9_]+)'/g)) names.add(m[1] ?? '')
  return [...names]
}
