// Generates the field tables of docs/schemas/SCHEMA_REFERENCE.md from the built schemas, so the
// reference cannot drift from the code. Each table lives between
//   <!-- generated:<Name>:start --> and <!-- generated:<Name>:end -->
// Usage: node scripts/reference-tables.mjs --write | --check [--doc <path>]
// --check exits 1 (and names the sections) when the doc differs from what the schemas produce now.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { ERROR_CODES, Identifier, SCHEMAS, SourceName, Timestamp, Ulid } from '../dist/index.js'

const DEFAULT_DOC = fileURLToPath(new URL('../../../docs/schemas/SCHEMA_REFERENCE.md', import.meta.url))

// What a field means in a record. The type, format and whether it is required come from the
// schema; the meaning cannot, so it is written here once per field (or per schema and field where
// the meaning differs). A field with no meaning here and no description in its schema fails the run.
const MEANINGS = {
  schema_version: 'BaseSchema version of this record. A v1.1 server accepts only `"1.1"`.',
  record_id:
    'Unique id of this record, minted by its producer. On inputs it is also the idempotency key: a retry with the same `record_id` and body returns the original output.',
  user_id: 'The person whose interaction this is. Opaque to CARE; never parsed.',
  timestamp: 'When the producer created the record.',
  source: 'The component that produced the record (`ui`, `caregiver_app`, a worker name...).',
  origin: '`human` when a person (user or caregiver) caused the record; `system` for automatic triggers.',
  performer_id:
    'The person who performed the action (the user or a caregiver). Required when `origin` is `human`.',
  session_id:
    'The session this record belongs to. Minted only by session_manager; callers propagate it explicitly.',
  metadata: 'Small, flat facts about the session (device, locale, app version...).',
  event: 'The lifecycle event this record is.',
  input_record_id: 'The `record_id` of the input that caused this event.',
  input_source: 'The `source` of the input that caused this event.',
  input_digest:
    'sha256 of the canonical JSON of the input that caused this event; tells a retry from a different request with the same `record_id`.',
  idle_timeout_ms: 'The session ends after this many milliseconds without activity.',
  max_duration_ms: 'The session ends this many milliseconds after it started, whatever the activity.',
  reason: 'Why the session ended: `explicit` (asked for), `idle_timeout` or `max_duration`.',
  started_at: 'When the session started (the `timestamp` of its `session.start` event).',
  ended_at: 'When the session really ended; for a timeout, when the limit was reached.',
  error: 'Machine-readable code from the ERROR_CODES table. Clients branch on this.',
  message: 'Human-readable explanation. Never parse it.',
  fields: 'The offending fields, each located by JSON Pointer.',
  details: 'Extra facts about the error, e.g. how an already ended session ended.',
}
const CONTEXT_MEANINGS = {
  'SessionManagerStartOutput.timestamp': 'When the session started.',
  'SessionManagerTouchOutput.timestamp': 'When the activity was recorded.',
  'SessionManagerEndOutput.timestamp': 'When the end event was recorded (may be after `ended_at`).',
  'SessionManagerEndOutput.input_record_id':
    'The `record_id` of the end input; absent when a timeout ended the session.',
  'SessionManagerEndOutput.input_source':
    'The `source` of the end input; absent when a timeout ended the session.',
  'SessionManagerEndOutput.input_digest': 'sha256 of the end input; absent when a timeout ended the session.',
  'SessionManagerStartOutput.source': 'Always `session_manager` on session_manager outputs.',
  'SessionManagerTouchOutput.source': 'Always `session_manager` on session_manager outputs.',
  'SessionManagerEndOutput.source': 'Always `session_manager` on session_manager outputs.',
}

const code = (text) => `\`${text}\``
const cell = (text) => String(text).replaceAll('|', '\\|').replaceAll('\n', ' ')

function typeOf(node) {
  if (node.const !== undefined) return `${code(JSON.stringify(node.const))} (constant)`
  if (node.anyOf?.every((branch) => branch.const !== undefined))
    return `one of ${node.anyOf.map((branch) => code(JSON.stringify(branch.const))).join(', ')}`
  if (node.type === 'string') {
    if (node.pattern === Ulid.pattern) return 'string: ULID (26 upper-case Crockford base32 characters)'
    if (node.pattern === Timestamp.pattern) return 'string: UTC timestamp `YYYY-MM-DDTHH:mm:ss.sssZ`'
    if (node.pattern === Identifier.pattern) return 'string: identifier (1-128 printable ASCII, no spaces)'
    if (node.pattern === SourceName.pattern) return 'string: source name (1-64 chars, `^[a-z][a-z0-9_.:-]*$`)'
    const limits = [node.minLength && `min ${node.minLength}`, node.maxLength && `max ${node.maxLength}`]
    const extra = [node.pattern && `pattern ${code(node.pattern)}`, ...limits].filter(Boolean).join(', ')
    return extra ? `string (${extra})` : 'string'
  }
  if (node.type === 'integer' || node.type === 'number') {
    const bounds = [
      node.minimum !== undefined && `>= ${node.minimum}`,
      node.maximum !== undefined && `<= ${node.maximum}`,
    ]
    const extra = bounds.filter(Boolean).join(', ')
    return extra ? `${node.type} ${extra}` : node.type
  }
  if (node.type === 'object' && node.patternProperties) {
    const [[keyPattern, value]] = Object.entries(node.patternProperties)
    const values = (value.anyOf ?? [value]).map(typeOf).join(' or ')
    const keys = keyPattern === '^.*$' ? 'any keys' : `keys ${code(keyPattern)}`
    const max = node.maxProperties !== undefined ? `, at most ${node.maxProperties} keys` : ''
    return `object (${keys}${max}; values: ${values})`
  }
  if (node.type === 'array') {
    const items = node.items?.properties
      ? `{ ${Object.keys(node.items.properties).join(', ')} }`
      : typeOf(node.items)
    return `array of ${items}`
  }
  return node.type ?? 'any'
}

/** Fields that `then` makes required, with the `if` condition in words. */
function conditionalRequired(schema) {
  const out = new Map()
  const condition = Object.entries(schema.if?.properties ?? {})
    .filter(([, sub]) => sub.const !== undefined)
    .map(([name, sub]) => `${code(name)} is ${code(JSON.stringify(sub.const))}`)
    .join(' and ')
  for (const name of schema.then?.required ?? []) out.set(name, `when ${condition}`)
  return out
}

function fieldTable(name, schema) {
  const required = new Set(schema.required ?? [])
  const conditional = conditionalRequired(schema)
  const rows = Object.entries(schema.properties).map(([field, node]) => {
    const meaning = CONTEXT_MEANINGS[`${name}.${field}`] ?? MEANINGS[field] ?? node.description
    if (!meaning)
      throw new Error(`${name}.${field} has no description: add one to MEANINGS in ${import.meta.url}`)
    const isRequired = required.has(field) ? 'yes' : conditional.has(field) ? conditional.get(field) : 'no'
    return `| ${code(field)} | ${cell(typeOf(node))} | ${cell(isRequired)} | ${cell(meaning)} |`
  })
  const closed =
    schema.additionalProperties === false
      ? 'Unknown properties: **rejected**.'
      : 'Unknown properties: allowed (consumers must ignore them).'
  return ['| Field | Type / format | Required | Meaning |', '| --- | --- | --- | --- |', ...rows, '', closed]
}

function unionTable(schema) {
  const rows = schema.anyOf.map((branch) => {
    const match = Object.entries(SCHEMAS).find(
      ([, candidate]) => JSON.stringify(candidate) === JSON.stringify(branch),
    )
    return `| ${code(branch.properties.event.const)} | ${match ? `[${match[0]}](#${match[0].toLowerCase()})` : 'inline'} |`
  })
  return ['| `event` | Schema |', '| --- | --- |', ...rows]
}

function errorCodesTable() {
  const rows = Object.entries(ERROR_CODES).map(
    // Escaped so `__proto__` in a message is not read as bold markup.
    ([errorCode, { status, message }]) =>
      `| ${code(errorCode)} | ${status} | ${cell(message.replaceAll('_', '\\_'))} |`,
  )
  return ['| Code | HTTP status | Meaning (default `message`) |', '| --- | --- | --- |', ...rows]
}

/** Every generated section by marker name, as the schemas produce it now. */
export function generateSections() {
  const sections = new Map()
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const lines = schema.anyOf ? unionTable(schema) : fieldTable(name, JSON.parse(JSON.stringify(schema)))
    sections.set(name, lines.join('\n'))
  }
  sections.set('ERROR_CODES', errorCodesTable().join('\n'))
  return sections
}

const MARKER = /<!-- generated:([A-Za-z_]+):start -->\n[\s\S]*?<!-- generated:\1:end -->/g

/** Replaces every generated section of `doc`; reports names with no markers and unknown markers. */
export function render(doc, sections) {
  const seen = new Set()
  const unknown = []
  const text = doc.replace(MARKER, (_, name) => {
    if (!sections.has(name)) {
      unknown.push(name)
      return _
    }
    seen.add(name)
    return `<!-- generated:${name}:start -->\n${sections.get(name)}\n<!-- generated:${name}:end -->`
  })
  const missing = [...sections.keys()].filter((name) => !seen.has(name))
  return { text, missing, unknown }
}

/**
 * Table rows without their alignment padding: biome formats Markdown tables (pads cells, widens
 * `---`), and that must not count as drift. Cell contents still have to match exactly.
 */
function normalize(text) {
  return text
    .split('\n')
    .map((line) => {
      if (!line.startsWith('|')) return line
      const cells = line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim())
      return `| ${cells.map((c) => (/^:?-+:?$/.test(c) ? '---' : c)).join(' | ')} |`
    })
    .join('\n')
}

function section(text, name) {
  const pattern = new RegExp(`<!-- generated:${name}:start -->[\\s\\S]*?<!-- generated:${name}:end -->`)
  const found = text.match(pattern)?.[0]
  return found === undefined ? undefined : normalize(found)
}

/** Formats the doc with the workspace's biome so the committed file passes `biome ci`. */
function formatWithBiome(docPath) {
  let bin
  try {
    bin = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome')
  } catch {
    console.warn('biome not found: tables left unpadded; run `pnpm exec biome format --write` on the doc')
    return
  }
  execFileSync(process.execPath, [bin, 'format', '--write', docPath], { stdio: 'ignore' })
}

function main(argv) {
  const mode = argv.includes('--write') ? 'write' : argv.includes('--check') ? 'check' : undefined
  const docIndex = argv.indexOf('--doc')
  const docPath = docIndex >= 0 ? argv[docIndex + 1] : DEFAULT_DOC
  if (!mode || !docPath) {
    console.error('usage: node scripts/reference-tables.mjs --write | --check [--doc <path>]')
    return 2
  }
  const doc = readFileSync(docPath, 'utf8')
  const sections = generateSections()
  const { text, missing, unknown } = render(doc, sections)
  const problems = [
    ...missing.map((name) => `no <!-- generated:${name}:start/end --> markers for ${name}`),
    ...unknown.map((name) => `markers for ${name}, which is not a schema or ERROR_CODES`),
  ]
  const stale = [...sections.keys()].filter(
    (name) => !missing.includes(name) && section(doc, name) !== section(text, name),
  )
  if (mode === 'write') {
    if (stale.length > 0) {
      writeFileSync(docPath, text)
      formatWithBiome(docPath)
    }
    for (const problem of problems) console.error(problem)
    console.log(`${stale.length > 0 ? `updated ${stale.join(', ')} in` : 'unchanged:'} ${docPath}`)
    return problems.length > 0 ? 1 : 0
  }
  if (stale.length > 0)
    problems.push(
      `stale generated sections: ${stale.join(', ')} (run \`pnpm --filter @care/schemas run docs\`)`,
    )
  for (const problem of problems) console.error(problem)
  if (problems.length === 0) console.log(`up to date: ${docPath}`)
  return problems.length > 0 ? 1 : 0
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  process.exitCode = main(process.argv.slice(2))
