// Writes every schema in SCHEMAS as a standalone JSON Schema (draft 2020-12) file into
// dist/json-schema (see jsonSchemaDocument), so teams outside TypeScript validate against exactly
// what we validate; catalog.test.ts compiles each with ajv in strict mode.
import { mkdirSync, writeFileSync } from 'node:fs'
import { jsonSchemaDocument, SCHEMAS } from '../dist/index.js'

const outDir = new URL('../dist/json-schema/', import.meta.url)
mkdirSync(outDir, { recursive: true })
for (const [name, schema] of Object.entries(SCHEMAS)) {
  writeFileSync(
    new URL(`${name}.json`, outDir),
    `${JSON.stringify(jsonSchemaDocument(name, schema), null, 2)}\n`,
  )
}
console.log(`emitted ${Object.keys(SCHEMAS).length} JSON Schema files to dist/json-schema`)
