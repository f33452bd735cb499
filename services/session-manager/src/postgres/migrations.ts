import type pg from 'pg'
import { withClient } from './database.js'
import { quoteIdent, type SchemaNames } from './schema-names.js'

/** One schema change. Versions only grow; an applied migration is never edited, only followed. */
export interface Migration {
  version: number
  name: string
  /** SQL run inside the migration transaction; `service` is the quoted role the service logs in as. */
  sql(t: SchemaNames, service: string): string
}

/**
 * The versioned migrations, in order. Version 1 creates the append-only event table (guarded by
 * privileges and triggers), the sessions projection, the checkpoint chain and the watermark
 * function the checkpointer uses. Version 2 adds the Merkle tree's persisted hashes (derived data).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, sessions, checkpoints',
    sql: (t, service) => `
CREATE TABLE ${t.events} (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id text NOT NULL,
  session_seq integer NOT NULL CHECK (session_seq >= 1),
  event text NOT NULL CHECK (event IN ('session.start', 'session.touch', 'session.end')),
  record_id text NOT NULL UNIQUE,
  input_record_id text UNIQUE,
  input_digest text,
  event_time timestamptz NOT NULL,
  body text NOT NULL,
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (session_id, session_seq),
  CHECK ((event = 'session.start') = (session_seq = 1))
);
-- Exactly one end per session, whoever writes it (explicit end, any instance's timeout sweep).
CREATE UNIQUE INDEX events_one_end_per_session ON ${t.events} (session_id) WHERE event = 'session.end';
CREATE INDEX events_by_time ON ${t.events} (event_time, seq);

CREATE TABLE ${t.sessions} (
  session_id text PRIMARY KEY,
  user_id text NOT NULL,
  started_at bigint NOT NULL,
  last_activity_at bigint NOT NULL,
  idle_timeout_ms bigint NOT NULL,
  max_duration_ms bigint NOT NULL,
  expires_at bigint NOT NULL,
  event_count integer NOT NULL,
  last_hash text NOT NULL,
  last_event_at bigint NOT NULL,
  ended_at bigint,
  end_reason text
);
CREATE INDEX sessions_open_by_expiry ON ${t.sessions} (expires_at) WHERE ended_at IS NULL;

CREATE TABLE ${t.checkpoints} (
  checkpoint_no bigint PRIMARY KEY CHECK (checkpoint_no >= 1),
  from_seq bigint NOT NULL,
  to_seq bigint NOT NULL CHECK (to_seq > from_seq),
  event_count bigint NOT NULL,
  events_digest text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (from_seq)
);

CREATE FUNCTION ${t.schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'care: %.% is append-only; % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$fn$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ${t.events}
  FOR EACH ROW EXECUTE FUNCTION ${t.schema}.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ${t.events}
  FOR EACH STATEMENT EXECUTE FUNCTION ${t.schema}.refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON ${t.checkpoints}
  FOR EACH ROW EXECUTE FUNCTION ${t.schema}.refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON ${t.checkpoints}
  FOR EACH STATEMENT EXECUTE FUNCTION ${t.schema}.refuse_change();

-- Waits for every insert in flight (SHARE conflicts with the inserters' ROW EXCLUSIVE), so every
-- seq at or below the result belongs to a finished transaction. Runs as the owner: the service
-- role itself may not take a SHARE lock. Held only for the length of one short transaction.
CREATE FUNCTION ${t.watermark} RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE high bigint;
BEGIN
  LOCK TABLE ${t.events} IN SHARE MODE;
  SELECT coalesce(max(seq), 0) INTO high FROM ${t.events};
  RETURN high;
END
$fn$;

REVOKE ALL ON ${t.events}, ${t.checkpoints}, ${t.sessions} FROM PUBLIC;
REVOKE ALL ON FUNCTION ${t.watermark} FROM PUBLIC;
-- The owner too: in single-role setups the service is the owner, and must still not rewrite history.
-- The owner keeps TRUNCATE on events only because LOCK TABLE ... SHARE (events_watermark) needs it;
-- the BEFORE TRUNCATE trigger refuses every actual truncation.
REVOKE UPDATE, DELETE ON ${t.events} FROM CURRENT_USER;
REVOKE UPDATE, DELETE, TRUNCATE ON ${t.checkpoints} FROM CURRENT_USER;
GRANT USAGE ON SCHEMA ${t.schema} TO ${service};
GRANT SELECT, INSERT ON ${t.events}, ${t.checkpoints} TO ${service};
GRANT SELECT, INSERT, UPDATE ON ${t.sessions} TO ${service};
GRANT EXECUTE ON FUNCTION ${t.watermark} TO ${service};
`,
  },
  {
    version: 2,
    name: 'merkle tree hashes (derived, rebuildable)',
    sql: (t, service) => `
-- The Merkle tree over the events' tree lines: the hash of every complete subtree (level 0 = leaf
-- hashes), and where the persisted tree ends. Derived data, written after commit by every instance
-- (identical values), rebuilt from the events when it disagrees with them; not append-only.
CREATE TABLE ${t.treeNodes} (
  level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (level, idx)
);
CREATE TABLE ${t.treeHeads} (
  size bigint PRIMARY KEY CHECK (size >= 1),
  event_seq bigint NOT NULL,
  line_hash text NOT NULL,
  prev_line_hash text NOT NULL,
  root bytea NOT NULL CHECK (octet_length(root) = 32)
);
REVOKE ALL ON ${t.treeNodes}, ${t.treeHeads} FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ${t.treeNodes}, ${t.treeHeads} TO ${service};
`,
  },
  {
    version: 3,
    name: 'review page indexes',
    // The review search (issue #16): a user's sessions and a date range of starts, newest first.
    sql: (t) => `
CREATE INDEX sessions_by_user_start ON ${t.sessions} (user_id, started_at DESC, session_id DESC);
CREATE INDEX sessions_by_start ON ${t.sessions} (started_at DESC, session_id DESC);
`,
  },
]

/** What `migrate` did. */
export interface MigrationReport {
  applied: number[]
  current: number
}

/**
 * Creates or upgrades the schema to the newest migration, idempotently. All pending migrations run
 * in one transaction under a transaction-level advisory lock keyed by the schema name, so several
 * instances starting at once apply each migration exactly once (the others wait, then find nothing
 * to do). With `ownerRole`, objects are created as that role (`SET LOCAL ROLE`) and the logged-in
 * role only receives the grants the service needs.
 *
 * @example
 * const { applied } = await migrate(pool, schemaNames('care_sessions'), { ownerRole: 'care_owner' })
 */
export async function migrate(
  pool: pg.Pool,
  t: SchemaNames,
  options: { ownerRole?: string; migrations?: readonly Migration[] } = {},
): Promise<MigrationReport> {
  const migrations = options.migrations ?? MIGRATIONS
  return withClient(pool, async (client) => {
    try {
      await client.query('BEGIN')
      const { rows } = await client.query<{ service: string }>('SELECT session_user AS service')
      const service = quoteIdent(rows[0]!.service)
      if (options.ownerRole) await client.query(`SET LOCAL ROLE ${quoteIdent(options.ownerRole)}`)
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`care-sessions:migrate:${t.raw}`])
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${t.schema}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${t.migrations} (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      applied_by text NOT NULL DEFAULT session_user)`)
      const done = new Set(
        (await client.query<{ version: number }>(`SELECT version FROM ${t.migrations}`)).rows.map(
          (r) => r.version,
        ),
      )
      const applied: number[] = []
      for (const migration of migrations) {
        if (done.has(migration.version)) continue
        await client.query(migration.sql(t, service))
        await client.query(`INSERT INTO ${t.migrations} (version, name) VALUES ($1, $2)`, [
          migration.version,
          migration.name,
        ])
        applied.push(migration.version)
      }
      await client.query('COMMIT')
      return { applied, current: Math.max(0, ...done, ...applied) }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  })
}
