import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// Resolution is checked in a real Node process started inside each package directory, so the
// package's own `exports` map decides, exactly as it will for a consumer (vitest's resolver is
// more lenient than Node's).
const PROBE = `
const out = {}
try { const m = await import('@care/schemas'); out.root = Object.keys(m).sort() } catch (e) { out.root = e.code }
try { await import('@care/schemas/dist/primitives.js'); out.deep = 'loaded' } catch (e) { out.deep = e.code }
try { await import('@care/schemas/src/index.ts'); out.src = 'loaded' } catch (e) { out.src = e.code }
try { out.json = import.meta.resolve('@care/schemas/json-schema/SessionManagerStartInput.json') } catch (e) { out.json = e.code }
console.log(JSON.stringify(out))
`

interface Probe {
  root: string[] | string
  deep: string
  src: string
  json: string
}

function probe(directory: string): Probe {
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
    cwd: directory,
    encoding: 'utf8',
    timeout: 20_000,
  })
  return JSON.parse(stdout) as Probe
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const schemasDir = fileURLToPath(new URL('../', import.meta.url))

/** Workspace packages that declare a dependency on @care/schemas: its real consumers. */
function dependents(): string[] {
  const found: string[] = []
  for (const group of ['packages', 'services']) {
    const groupDir = `${repoRoot}${group}`
    if (!existsSync(groupDir)) continue
    for (const name of readdirSync(groupDir)) {
      const manifest = `${groupDir}/${name}/package.json`
      if (!existsSync(manifest)) continue
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as Record<
        string,
        Record<string, string> | undefined
      >
      if (pkg.dependencies?.['@care/schemas'] || pkg.devDependencies?.['@care/schemas'])
        found.push(`${groupDir}/${name}`)
    }
  }
  return found
}

function expectPublicSurfaceOnly(result: Probe) {
  expect(result.root).toEqual(
    expect.arrayContaining(['SCHEMAS', 'errorResponse', 'parseJsonBody', 'ULID_PATTERN']),
  )
  expect(result.deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
  expect(result.src).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
  expect(result.json).toMatch(/\/dist\/json-schema\/SessionManagerStartInput\.json$/)
  const document = JSON.parse(readFileSync(new URL(result.json), 'utf8')) as { $id: string }
  expect(document.$id).toBe('urn:care:schema:1.1:SessionManagerStartInput')
}

describe('the package exports map', () => {
  it('has at least one workspace consumer to check from', () => {
    expect(dependents().length).toBeGreaterThan(0)
  })

  it('lets the package import itself by name and blocks deep imports (self-reference)', () => {
    expectPublicSurfaceOnly(probe(schemasDir))
  })

  it.each(dependents().map((dir) => [dir.slice(repoRoot.length), dir]))(
    'from %s: the root and JSON Schema files resolve, dist/primitives.js is not exported',
    (_label, dir) => {
      expectPublicSurfaceOnly(probe(dir))
    },
  )
})
