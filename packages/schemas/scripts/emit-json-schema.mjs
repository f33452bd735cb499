// Writes every schema in SCHEMAS as a standalone JSON Schema (draft 2020-12) file into
// dist/json-schema, so teams outside TypeScript validate against exactly what we validate.
import { mkdirSync, writeFileSync } from 'node:fs'
import { SCHEMA_VERSION, SCHEMAS } from '../dist/index.js'

const outDir = new URL('../dist/json-schema/', import.meta.url)
mkdirSync(outDir, { recursive: true })
for (const [name, schema] of Object.entries(SCHEMAS)) {
  const document = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:care:schema:${SCHEMA_VERSION}:${name}`,
    title: name,
    ...JSON.parse(JSON.stringify(schema)),
  }
  writeFileSync(new URL(`${name}.json`, outDir), `${JSON.stringify(document, null, 2)}\n`)
}
console.log(`emitted ${Object.keys(SCHEMAS).length} JSON Schema files to dist/json-schema`)
