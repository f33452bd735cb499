/**
 * The qualified names of the service's objects in one PostgreSQL schema (default `care_sessions`),
 * quoted once here so no query interpolates an unquoted identifier.
 *
 * @example
 * const t = schemaNames('care_sessions')
 * await pool.query(`SELECT count(*) FROM ${t.events}`)
 */
export interface SchemaNames {
  schema: string
  /** The raw (unquoted) schema name, for advisory-lock keys and messages. */
  raw: string
  events: string
  sessions: string
  checkpoints: string
  migrations: string
  /** `events_watermark()`: the highest seq below which no insert is in flight (see checkpoints). */
  watermark: string
  /** The Merkle tree's complete-subtree hashes (derived data, migration 2). */
  treeNodes: string
  /** Where the persisted tree ends: size, last row's seq and line hashes (derived data, migration 2). */
  treeHeads: string
}

export const DEFAULT_SCHEMA = 'care_sessions'

/**
 * Quotes a PostgreSQL identifier (doubling embedded quotes).
 *
 * @example
 * quoteIdent('care_owner') // '"care_owner"'
 */
export function quoteIdent(name: string): string {
  if (name === '' || name.includes('\0')) throw new Error(`not a valid identifier: ${JSON.stringify(name)}`)
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * Builds the quoted, schema-qualified names for `schema`.
 *
 * @example
 * schemaNames('care_sessions').events // '"care_sessions".events'
 */
export function schemaNames(schema: string = DEFAULT_SCHEMA): SchemaNames {
  const s = quoteIdent(schema)
  return {
    schema: s,
    raw: schema,
    events: `${s}.events`,
    sessions: `${s}.sessions`,
    checkpoints: `${s}.checkpoints`,
    migrations: `${s}.schema_migrations`,
    watermark: `${s}.events_watermark()`,
    treeNodes: `${s}.tree_nodes`,
    treeHeads: `${s}.tree_heads`,
  }
}
