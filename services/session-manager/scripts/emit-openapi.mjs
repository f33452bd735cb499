// Writes the service's OpenAPI document to dist/openapi.json at build, with the package version,
// so consumers (client generators, linters, docs) get it without running the service. The service
// serves the same document at GET /openapi.json (src/http/openapi.ts builds both).
import { readFileSync, writeFileSync } from 'node:fs'
import { buildOpenApiDocument } from '../dist/http/openapi.js'

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
writeFileSync(
  new URL('../dist/openapi.json', import.meta.url),
  `${JSON.stringify(buildOpenApiDocument(version), null, 2)}\n`,
)
console.log(`wrote dist/openapi.json (${version})`)
