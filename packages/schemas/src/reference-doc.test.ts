import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterAll, describe, expect, it } from 'vitest'
import { SCHEMAS } from './catalog.js'
import type { SchemaName } from './test-support/fixtures.js'
import { compileValidator } from './validation.js'

const SCRIPT = fileURLToPath(new URL('../scripts/reference-tables.mjs', import.meta.url))
const DOC = fileURLToPath(new URL('../../../docs/schemas/SCHEMA_REFERENCE.md', import.meta.url))
const doc = readFileSync(DOC, 'utf8')
const scratch = mkdtempSync(join(tmpdir(), 'care-schema-doc-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function check(docPath?: string) {
  const args = [SCRIPT, '--check', ...(docPath ? ['--doc', docPath] : [])]
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 20_000 })
  return { status: run.status, stderr: run.stderr }
}

function withDoc(text: string): string {
  const path = join(scratch, `doc-${Math.random().toString(36).slice(2)}.md`)
  writeFileSync(path, text)
  return path
}

describe('SCHEMA_REFERENCE.md generated tables', () => {
  it('match what scripts/reference-tables.mjs produces from the built schemas', () => {
    const result = check()
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })

  it('are reported stale when a table row differs from the schema', () => {
    const tampered = doc.replace(
      /(<!-- generated:SessionManagerEndInput:start -->[\s\S]*?\| `session_id` +\| string: )ULID/,
      '$1UUID',
    )
    expect(tampered).not.toBe(doc)
    const result = check(withDoc(tampered))
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/stale generated sections: SessionManagerEndInput \(/)
  })

  it('are reported missing when a schema has no markers in the doc', () => {
    const cut = doc.replace(
      /<!-- generated:SessionManagerTouchOutput:start -->[\s\S]*?<!-- generated:SessionManagerTouchOutput:end -->/,
      '',
    )
    const result = check(withDoc(cut))
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('no <!-- generated:SessionManagerTouchOutput:start/end --> markers')
  })

  it('cover every schema in SCHEMAS and the error codes', () => {
    for (const name of [...Object.keys(SCHEMAS), 'ERROR_CODES']) {
      expect(doc, name).toContain(`<!-- generated:${name}:start -->`)
      expect(doc, name).toContain(`<!-- generated:${name}:end -->`)
    }
  })
})

describe('SCHEMA_REFERENCE.md examples', () => {
  const examples = [...doc.matchAll(/<!-- example:(\w+):(valid|invalid) -->\n```json\n([\s\S]*?)\n```/g)].map(
    ([, name, verdict, json], index) => ({ name: name as SchemaName, verdict, json: json ?? '', index }),
  )
  const ajv = new Ajv2020({ strict: true, strictRequired: false })
  const ajvFor = (name: SchemaName) =>
    ajv.getSchema(`urn:care:schema:1.1:${name}`) ??
    ajv.compile(
      JSON.parse(readFileSync(new URL(`../dist/json-schema/${name}.json`, import.meta.url), 'utf8')),
    )

  it('show at least one record of every schema', () => {
    const shown = new Set(examples.map((e) => e.name))
    for (const name of Object.keys(SCHEMAS)) expect(shown.has(name as SchemaName), name).toBe(true)
  })

  it.each(examples.map((e) => [`${e.name} #${e.index} (${e.verdict})`, e] as const))(
    'example %s has the verdict the doc claims (TypeBox and Ajv)',
    (_label, example) => {
      expect(Object.keys(SCHEMAS)).toContain(example.name)
      const value: unknown = JSON.parse(example.json)
      const expected = example.verdict === 'valid'
      expect(compileValidator(SCHEMAS[example.name]).check(value)).toBe(expected)
      expect(ajvFor(example.name)(value)).toBe(expected)
    },
  )
})
