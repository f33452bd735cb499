import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompactRange, signCheckpoint, TreeProofs } from '@care/tlog'
import { pino } from 'pino'
import { ulid } from 'ulid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  independentLeafHash,
  independentOpenCheckpoint,
  independentVerifyInclusion,
} from '../../../../packages/tlog/src/test-support/independent-verifier.js'
import { captureIo } from '../audit/test-support/audit-fixtures.js'
import { openBackend } from '../backend.js'
import { main } from '../cli/cli.js'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'
import { startInputAt } from '../sessions/test-support/inputs.js'
import { postJson, requestBody } from '../test-support/records.js'
import { logLines } from '../transparency/log-lines.js'
import { type ProvenExport, verifyProvenExport } from '../transparency/proven-export.js'
import { type NoteKeys, noteKeys } from '../transparency/test-support/note-keys.js'
import { checkpointFileName, listCheckpointFiles } from '../transparency/transparency-log.js'
import { chainEvent, eventOfBody, GENESIS_HASH } from './event-chain.js'
import { exportToJsonlLog, importJsonlLog } from './jsonl-transfer.js'
import { schemaNames } from './schema-names.js'
import { assertBuilt, type Instance, postgresInstanceEnv, startInstance } from './test-support/instances.js'
import {
  createServiceDatabase,
  execFileAsync,
  postgresBinDir,
  startTestPostgres,
  type TestPostgres,
  testPool,
} from './test-support/postgres-server.js'
import { postgresTreeLines } from './tree-lines.js'
import { readTreeNodes } from './tree-table.js'

const ORIGIN = 'care.example/pg-sessions'
const t = schemaNames()
let server: TestPostgres
const dirs: string[] = []

beforeAll(async () => {
  server = await startTestPostgres()
}, 60_000)

afterAll(async () => {
  await server?.destroy()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}, 30_000)

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'care-pgtree-'))
  dirs.push(dir)
  return dir
}

function keys(name = ORIGIN): NoteKeys {
  return noteKeys(name)
}

type Keys = NoteKeys

function superuserUrl(serviceUrl: string): string {
  return serviceUrl.replace('care_service@', 'postgres@')
}

async function startService(
  env: Record<string, string>,
  key?: Keys,
  everyRecords = 4,
): Promise<{ url: string; sm: RunningSessionManager }> {
  const config = loadConfig({ PORT: '0', ...env }, [])
  const sm = await startSessionManager(config, {
    logger: pino({ level: 'silent' }),
    transparency: key
      ? { signer: key.signer, verifier: key.verifier, everyRecords, intervalMs: 60_000 }
      : { everyRecords, intervalMs: 60_000 },
  })
  await sm.ready
  return { url: `http://127.0.0.1:${sm.port}`, sm }
}

/** Starts `n` sessions, touches each once and ends every other one (3n/2 events, several sessions interleaved). */
async function workload(url: string, n: number, user = 'user'): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await postJson(`${url}/sessions.start`, requestBody({ user_id: `${user}-${i}` }))
    expect(res?.status).toBe(201)
    ids.push(String(res!.body.session_id))
  }
  for (const [i, id] of ids.entries()) {
    const touch = await postJson(
      `${url}/sessions.touch`,
      requestBody({ user_id: `${user}-${i}`, session_id: id }),
    )
    expect(touch?.status).toBe(200)
  }
  for (const [i, id] of ids.entries()) {
    if (i % 2 === 1) continue
    const end = await postJson(
      `${url}/sessions.end`,
      requestBody({ user_id: `${user}-${i}`, session_id: id }),
    )
    expect(end?.status).toBe(200)
  }
  return ids
}

async function collect(lines: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = []
  for await (const line of lines) out.push(Buffer.from(line))
  return out
}

function rootOf(lines: readonly Buffer[]): Buffer {
  const range = new CompactRange()
  for (const line of lines) range.appendEntry(line)
  return range.root()
}

function rootsAtEverySize(lines: readonly Buffer[]): string[] {
  const range = new CompactRange()
  return lines.map((line) => {
    range.appendEntry(line)
    return range.root().toString('base64')
  })
}

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = captureIo()
  const code = await main(argv, out.io)
  return { code, stdout: out.stdout, stderr: out.stderr }
}

async function waitForCheckpoint(url: string, size: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${url}/checkpoint`)
    if (res.status === 200) {
      const note = await res.text()
      if (Number(note.split('\n')[1]) >= size) return note
    } else await res.body?.cancel()
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no checkpoint of size ${size}`)
}

describe('the PostgreSQL store keeps the same Merkle tree as the embedded log', () => {
  it('gives the same leaves and the same root at every size as the embedded log, both ways of the JSONL transfer', async () => {
    const source = tempDir()
    const { url, sm } = await startService({ CARE_DATA_DIR: source })
    await workload(url, 6)
    await sm.stop()
    const embedded = await collect(logLines(source))
    expect(embedded).toHaveLength(15)

    const databaseUrl = await createServiceDatabase(server)
    const imported = await importJsonlLog(source, { url: databaseUrl, ownerRole: 'care_owner' })
    expect(imported.ok).toBe(true)
    const pool = testPool(databaseUrl, 2)
    try {
      const database = await collect(postgresTreeLines(pool, t))
      expect(database.map(String)).toEqual(embedded.map(String))
      expect(rootsAtEverySize(database)).toEqual(rootsAtEverySize(embedded))

      const back = tempDir()
      const exported = await exportToJsonlLog({ url: databaseUrl }, back)
      expect(exported.ok).toBe(true)
      expect(rootsAtEverySize(await collect(logLines(back)))).toEqual(rootsAtEverySize(database))
    } finally {
      await pool.end()
    }
  }, 120_000)
})

describe('signed checkpoints, proofs and proven exports on the PostgreSQL store', () => {
  // Shared fixture (read only by the tests): a service ran a workload with one record holding U+2028,
  // U+2029 and U+0085, then was stopped; what it served is kept here.
  const LINE_BREAKS = 'a\u2028b\u2029c\u0085d'
  let databaseUrl: string
  let dataDir: string
  let key: Keys
  let exportBody: string
  let leaves: Buffer[]
  let note: string
  let inclusion: { status: number; body: { leaf_hash: string; inclusion_proof: string[] } }
  let badInclusionStatus: number
  let proven: { status: number; doc: ProvenExport }
  let sessions: string[]

  const serviceEnv = (url = databaseUrl, dir = dataDir) => ({
    CARE_STORE: 'postgres',
    DATABASE_URL: url,
    CARE_DB_OWNER_ROLE: 'care_owner',
    CARE_DATA_DIR: dir,
  })
  const verifyDatabase = (url = databaseUrl, vkey = key.verifierKey, dir = dataDir) =>
    cli('verify', '--database-url', url, '--public-key', vkey, '--checkpoints', join(dir, 'checkpoints'))

  beforeAll(async () => {
    databaseUrl = await createServiceDatabase(server)
    dataDir = tempDir()
    key = keys()
    const { url, sm } = await startService(serviceEnv(), key, 4)
    try {
      sessions = await workload(url, 4)
      // A record whose field holds the Unicode line breaks the leaf escapes (the 11th record).
      const odd = await postJson(
        `${url}/sessions.start`,
        requestBody({ user_id: 'user-odd', metadata: { note: LINE_BREAKS } }),
      )
      expect(odd?.status).toBe(201)
      note = await waitForCheckpoint(url, 4)
      const pool = testPool(databaseUrl, 2)
      leaves = await collect(postgresTreeLines(pool, t)).finally(() => pool.end())
      const checkpoint = independentOpenCheckpoint(note, key.verifierKey)!
      const res = await fetch(`${url}/proofs/inclusion?seq=3&size=${checkpoint.size}`)
      inclusion = { status: res.status, body: (await res.json()) as typeof inclusion.body }
      const bad = await fetch(`${url}/proofs/inclusion?seq=0`)
      badInclusionStatus = bad.status
      await bad.body?.cancel()
      const exported = await fetch(`${url}/export`)
      expect(exported.status).toBe(200)
      exportBody = await exported.text()
      // The export signed a checkpoint over all 11 records.
      const doc = await fetch(`${url}/proofs/export?session_id=${sessions[1]}`)
      proven = { status: doc.status, doc: (await doc.json()) as ProvenExport }
    } finally {
      await sm.stop()
    }
  }, 120_000)

  it('signs checkpoints over committed rows, serves them with inclusion proofs, and proves exports', async () => {
    expect(leaves).toHaveLength(11)
    const checkpoint = independentOpenCheckpoint(note, key.verifierKey)!
    expect(checkpoint.origin).toBe(ORIGIN)
    expect(inclusion.status).toBe(200)
    const proof = inclusion.body
    expect(proof.leaf_hash).toBe(independentLeafHash(leaves[2]!).toString('base64'))
    const path = proof.inclusion_proof.map((h) => Buffer.from(h, 'base64'))
    expect(
      independentVerifyInclusion(2, checkpoint.size, independentLeafHash(leaves[2]!), path, checkpoint.root),
    ).toBe(true)
    expect(badInclusionStatus).toBe(400)
    expect(proven.status).toBe(200)
    expect(proven.doc.records.map((r) => r.line)).toEqual(
      leaves.map(String).filter((line) => line.includes(`"session_id":"${sessions[1]}"`)),
    )
    expect(verifyProvenExport(proven.doc, [key.verifier])).toMatchObject({ size: 11, records: 2 })

    const bodyLines = exportBody.split('\n').slice(0, -1)
    const { manifest } = JSON.parse(bodyLines.at(-1)!) as {
      manifest: { transparency: { checkpoint: string; tree_size: number; proofs: number; unproven: number } }
    }
    expect(manifest.transparency).toMatchObject({ tree_size: 11, proofs: 11, unproven: 0 })
    // The exported records are the tree's lines byte for byte (in the export's session order).
    const records = bodyLines.slice(0, 11)
    expect([...records].sort()).toEqual(leaves.map(String).sort())
    const signed = independentOpenCheckpoint(manifest.transparency.checkpoint, key.verifierKey)!
    for (const line of bodyLines.slice(11, 22)) {
      const { inclusion_proof: p } = JSON.parse(line) as {
        inclusion_proof: { seq: number; hashes: string[] }
      }
      const leaf = independentLeafHash(leaves[p.seq - 1]!)
      const path = p.hashes.map((h) => Buffer.from(h, 'base64'))
      expect(independentVerifyInclusion(p.seq - 1, 11, leaf, path, signed.root)).toBe(true)
    }
    const file = join(dataDir, 'export.jsonl')
    writeFileSync(file, exportBody)
    const ok = await cli('verify-export', '--public-key', key.verifierKey, file)
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)

    const verified = await verifyDatabase()
    expect(verified.stderr).toBe('')
    expect(verified.stdout).toMatch(/^OK: 11 record\(s\)/)
    expect(verified.code).toBe(0)
  }, 120_000)

  it('exports a field holding U+2028, U+2029 and U+0085 as the leaf bytes (escaped), so its proof matches', async () => {
    const leaf = leaves.find((line) => line.includes('user-odd'))!
    expect(leaf.toString('utf8')).toContain('a\\u2028b\\u2029c\\u0085d')
    const bodyLines = exportBody.split('\n').slice(0, -1)
    const exported = bodyLines.find((line) => line.includes('user-odd'))!
    expect(exported).not.toMatch(/[\u0085\u2028\u2029]/)
    expect(Buffer.from(exported, 'utf8').equals(leaf)).toBe(true)
    expect(JSON.parse(exported).metadata.note).toBe(LINE_BREAKS)
    const { manifest } = JSON.parse(bodyLines.at(-1)!) as {
      manifest: { transparency: { checkpoint: string } }
    }
    const signed = independentOpenCheckpoint(manifest.transparency.checkpoint, key.verifierKey)!
    const index = leaves.indexOf(leaf)
    const proofLine = bodyLines
      .slice(11, 22)
      .map((line) => JSON.parse(line) as { inclusion_proof: { seq: number; hashes: string[] } })
      .find((p) => p.inclusion_proof.seq === index + 1)!
    const path = proofLine.inclusion_proof.hashes.map((h) => Buffer.from(h, 'base64'))
    expect(
      independentVerifyInclusion(
        index,
        11,
        independentLeafHash(Buffer.from(exported, 'utf8')),
        path,
        signed.root,
      ),
    ).toBe(true)
  })

  it('care-sessions export --database-url carries per-record proofs from tree_nodes that verify-export accepts', async () => {
    const out = join(tempDir(), 'session.jsonl')
    const checkpoints = join(dataDir, 'checkpoints')
    const exported = await cli(
      'export',
      '--database-url',
      databaseUrl,
      '--checkpoints',
      checkpoints,
      '--session-id',
      sessions[1]!,
      '--out',
      out,
    )
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stderr).toMatch(
      /inclusion proofs for 2 record\(s\) against the checkpoint at tree size 11/,
    )
    // The records are the tree's lines byte for byte; the manifest names the newest signed checkpoint.
    const records = readFileSync(out, 'utf8').split('\n').slice(0, -1)
    expect(records).toEqual(leaves.map(String).filter((line) => line.includes(sessions[1]!)))
    const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as {
      transparency: { checkpoint: string; tree_size: number; proofs: number; unproven: number }
    }
    expect(manifest.transparency).toMatchObject({ tree_size: 11, proofs: 2, unproven: 0 })
    expect(manifest.transparency.checkpoint).toBe(
      readFileSync(listCheckpointFiles(checkpoints).at(-1)!.path, 'utf8'),
    )
    const ok = await cli('verify-export', '--public-key', key.verifierKey, out)
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)
    // Checked by the independent verifier too.
    const signed = independentOpenCheckpoint(manifest.transparency.checkpoint, key.verifierKey)!
    const proofs = readFileSync(`${out}.proofs.jsonl`, 'utf8').split('\n').slice(0, -1)
    for (const [i, line] of proofs.entries()) {
      const { inclusion_proof: p } = JSON.parse(line) as {
        inclusion_proof: { seq: number; hashes: string[] }
      }
      const path = p.hashes.map((h) => Buffer.from(h, 'base64'))
      const leaf = independentLeafHash(Buffer.from(records[i]!, 'utf8'))
      expect(independentVerifyInclusion(p.seq - 1, 11, leaf, path, signed.root)).toBe(true)
    }
    // An edited record fails verify-export.
    writeFileSync(out, readFileSync(out, 'utf8').replace('"session.touch"', '"session.tauch"'))
    const edited = await cli('verify-export', '--public-key', key.verifierKey, out)
    expect(edited.code).toBe(1)
  })

  it('care-sessions export --database-url proves against the newest checkpoint the persisted tree reaches, and says when none is persisted yet', async () => {
    // A checkpoint an instance signed from its tree before writing the hashes to the table: size 12,
    // one more than tree_heads reaches (11).
    const ahead = signCheckpoint(
      { origin: ORIGIN, size: 12, rootHash: rootOf([...leaves, Buffer.from('{"seq":12}')]) },
      [key.signer],
    )
    const withNewer = tempDir()
    for (const file of listCheckpointFiles(join(dataDir, 'checkpoints'))) {
      writeFileSync(join(withNewer, file.path.split('/').at(-1)!), readFileSync(file.path))
    }
    writeFileSync(join(withNewer, checkpointFileName(12)), ahead)
    const out = join(tempDir(), 'session.jsonl')
    const exported = await cli(
      'export',
      '--database-url',
      databaseUrl,
      '--checkpoints',
      withNewer,
      '--session-id',
      sessions[1]!,
      '--out',
      out,
    )
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stderr).toMatch(/against the checkpoint at tree size 11/)
    const ok = await cli('verify-export', '--public-key', key.verifierKey, out)
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)
    // Only checkpoints beyond the persisted tree: not a mismatch, the hashes are not written yet.
    const onlyNewer = tempDir()
    writeFileSync(join(onlyNewer, checkpointFileName(12)), ahead)
    const early = await cli(
      'export',
      '--database-url',
      databaseUrl,
      '--checkpoints',
      onlyNewer,
      '--session-id',
      sessions[1]!,
      '--out',
      join(tempDir(), 'early.jsonl'),
    )
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(/reaches size 11.*not persisted yet/)
    expect(early.stderr).not.toMatch(/does not match/)
  })

  it('care-sessions export --database-url refuses to write proofs from a tree_nodes table that does not match the checkpoint', async () => {
    const admin = testPool(superuserUrl(databaseUrl), 1)
    const out = join(tempDir(), 'all.jsonl')
    const saved = await admin.query<{ hash: Buffer }>(
      `SELECT hash FROM ${t.treeNodes} WHERE level = 0 AND idx = 0`,
    )
    try {
      await admin.query(`UPDATE ${t.treeNodes} SET hash = sha256('x') WHERE level = 0 AND idx = 0`)
      const result = await cli(
        'export',
        '--database-url',
        databaseUrl,
        '--checkpoints',
        join(dataDir, 'checkpoints'),
        '--out',
        out,
      )
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/cannot prove seq \d+ against .*tree_nodes does not match it/)
      expect(existsSync(out)).toBe(false)
      expect(existsSync(`${out}.proofs.jsonl`)).toBe(false)
    } finally {
      await admin.query(`UPDATE ${t.treeNodes} SET hash = $1 WHERE level = 0 AND idx = 0`, [
        saved.rows[0]!.hash,
      ])
      await admin.end()
    }
  })

  it('detects a forged proof and a checkpoint signed by an unknown key', async () => {
    const bodyLines = exportBody.split('\n').slice(0, -1)
    const forged = [...bodyLines]
    const value = JSON.parse(forged[12]!) as { inclusion_proof: { hashes: string[] } }
    const hash = Buffer.from(value.inclusion_proof.hashes[0]!, 'base64')
    hash[0]! ^= 1
    value.inclusion_proof.hashes[0] = hash.toString('base64')
    forged[12] = JSON.stringify(value)
    const file = join(dataDir, 'forged.jsonl')
    writeFileSync(file, `${forged.join('\n')}\n`)
    const result = await cli('verify-export', '--public-key', key.verifierKey, file)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/FAILED/)

    const stranger = await verifyDatabase(databaseUrl, keys().verifierKey)
    expect(stranger.code).toBe(1)
    expect(stranger.stderr).toMatch(/no verifiable signatures/)
  })

  it('detects an edited row with a recomputed hash, a deleted tail and a database restored from an older dump', async () => {
    // A database of its own (this test edits, rolls back and cuts it): 10 records signed to start with.
    const databaseUrl = await createServiceDatabase(server)
    const dataDir = tempDir()
    {
      const { url, sm } = await startService(serviceEnv(databaseUrl, dataDir), key, 4)
      try {
        await workload(url, 4)
      } finally {
        await sm.stop()
      }
    }
    const verifyOwn = (url = databaseUrl) => verifyDatabase(url, key.verifierKey, dataDir)
    const checkpointsDir = () => join(dataDir, 'checkpoints')
    const admin = testPool(superuserUrl(databaseUrl), 1)
    const tool = (name: string) =>
      [
        postgresBinDir(),
        ...(existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : []).map(
          (v) => `/usr/lib/postgresql/${v}/bin`,
        ),
      ]
        .map((dir) => join(dir, name))
        .find((path) => existsSync(path)) ?? name
    const dump = join(dataDir, 'before.dump')
    try {
      // A dump taken now (10 records), before more records are signed.
      await execFileAsync(tool('pg_dump'), ['-Fc', '-f', dump, superuserUrl(databaseUrl)])
      const { url, sm } = await startService(serviceEnv(databaseUrl, dataDir), key, 4)
      try {
        await workload(url, 2, 'later')
      } finally {
        await sm.stop()
      }
      expect((await verifyOwn()).code).toBe(0)

      await admin.query(`ALTER TABLE ${t.events} DISABLE TRIGGER USER`)
      const { rows } = await admin.query<{ seq: string; body: string; hash: string }>(
        `SELECT seq, body, hash FROM ${t.events} ORDER BY seq LIMIT 1 OFFSET 1`,
      )
      const original = rows[0]!
      const { createHash } = await import('node:crypto')
      const body = original.body.replace(/"user_id":"[^"]*"/, '"user_id":"mallory"')
      const recomputed = createHash('sha256').update(body).digest('hex')
      await admin.query(`UPDATE ${t.events} SET body = $1, hash = $2 WHERE seq = $3`, [
        body,
        recomputed,
        original.seq,
      ])
      const edited = await verifyOwn()
      expect(edited.code).toBe(1)
      expect(edited.stderr).toMatch(/Merkle root at size \d+ differs from the signed root/)
      await admin.query(`UPDATE ${t.events} SET body = $1, hash = $2 WHERE seq = $3`, [
        original.body,
        original.hash,
        original.seq,
      ])
      expect((await verifyOwn()).code).toBe(0)

      const restored = `${databaseUrl.split('/').at(-1)}_restored`
      await server.sql(`CREATE DATABASE ${restored}`)
      const restoredUrl = `${databaseUrl.split('/').slice(0, -1).join('/')}/${restored}`
      await execFileAsync(tool('pg_restore'), ['-d', superuserUrl(restoredUrl), dump])
      const rolledBack = await verifyOwn(restoredUrl)
      expect(rolledBack.code).toBe(1)
      expect(rolledBack.stderr).toMatch(
        /signed 15 records but the log has 10 \(tail cut or log rolled back\)/,
      )
      // A service started on the restored copy sees it too, and signs nothing over it.
      await server.sql(`GRANT CREATE ON DATABASE ${restored} TO care_owner`)
      const backend = await openBackend(loadConfig(serviceEnv(restoredUrl, dataDir), []), {
        transparency: { signer: key.signer, verifier: key.verifier, everyRecords: 4, intervalMs: 60_000 },
      })
      expect(backend.transparency?.signingDisabled).toMatch(
        /the log has 10 records but checkpoint .* signed 15/,
      )
      await backend.close()
      expect(listCheckpointFiles(checkpointsDir()).at(-1)?.size).toBe(15)

      await admin.query(`DELETE FROM ${t.events} WHERE seq > (SELECT max(seq) - 2 FROM ${t.events})`)
      const cut = await verifyOwn()
      expect(cut.code).toBe(1)
      expect(cut.stderr).toMatch(/signed 15 records but the log has 13/)
    } finally {
      await admin.end()
    }
  }, 240_000)
})

describe('several instances on one database', () => {
  it('build the same tree: their checkpoints, each in its own directory, verify against the one database', async () => {
    const databaseUrl = await createServiceDatabase(server)
    const key = keys()
    const dirs = [tempDir(), tempDir()]
    const env = (dataDir: string) => ({
      CARE_STORE: 'postgres',
      DATABASE_URL: databaseUrl,
      CARE_DB_OWNER_ROLE: 'care_owner',
      CARE_DATA_DIR: dataDir,
    })
    const a = await startService(env(dirs[0]!), key, 3)
    const b = await startService(env(dirs[1]!), key, 3)
    const served: Buffer[][] = []
    try {
      // Both write at once, so their rows interleave in seq order.
      await Promise.all([workload(a.url, 4, 'on-a'), workload(b.url, 4, 'on-b')])
      // Both serve proofs from the one tree_nodes table (each wrote the same hashes): byte-identical,
      // and each verifies against the checkpoint signed at 20 (checked below, once both stopped).
      for (const url of [a.url, b.url]) {
        let status = 0
        for (let i = 0; i < 200 && status !== 200; i++) {
          const res = await fetch(`${url}/proofs/inclusion?seq=20&size=20`)
          await res.body?.cancel()
          status = res.status
          if (status !== 200) await new Promise((r) => setTimeout(r, 50))
        }
        expect(status, `${url} serves proofs at size 20`).toBe(200)
      }
      const admin = testPool(superuserUrl(databaseUrl), 1)
      try {
        // The session with a record at seq 4, whose proof needs leaf 2 (index 2).
        const lines = await collect(postgresTreeLines(admin, t))
        const session = (JSON.parse(String(lines[3])) as { session_id: string }).session_id
        // A hash the table lacks (derived data, deleted by hand): the proof that needs it is a 503 in
        // the shared error shape, not a 500 and not a wrong proof. Instance a serves leaf 2 from memory
        // until its own write of it (after the read that brought it) is done: wait for that explicitly,
        // a 200 here meaning a still held it unwritten (its write then puts the row back).
        let saved: Buffer | undefined
        let missing: Response | undefined
        for (let i = 0; i < 100; i++) {
          const deleted = await admin.query<{ hash: Buffer }>(
            `DELETE FROM ${t.treeNodes} WHERE level = 0 AND idx = 2 RETURNING hash`,
          )
          saved = deleted.rows[0]?.hash ?? saved
          if (deleted.rows.length === 1) {
            missing = await fetch(`${a.url}/proofs/inclusion?seq=4&size=20`)
            if (missing.status === 503) break
            await missing.body?.cancel()
          }
          await new Promise((r) => setTimeout(r, 50))
        }
        expect(missing?.status).toBe(503)
        expect(await missing!.json()).toMatchObject({ error: 'upstream_unavailable' })
        // The proven export of that session: a 503 too (it was an unhandled RangeError, a 500).
        const exportMissing = await fetch(`${a.url}/proofs/export?session_id=${session}`)
        expect(exportMissing.status).toBe(503)
        expect(await exportMissing.json()).toMatchObject({ error: 'upstream_unavailable' })
        // A damaged row: its proof does not give the checkpoint's root, so the export answers 503
        // (it was a 200 with a proof that does not verify).
        await admin.query(`INSERT INTO ${t.treeNodes} (level, idx, hash) VALUES (0, 2, sha256('x'))`)
        const exportDamaged = await fetch(`${a.url}/proofs/export?session_id=${session}`)
        expect(exportDamaged.status).toBe(503)
        expect(await exportDamaged.json()).toMatchObject({ error: 'upstream_unavailable' })
        await admin.query(`UPDATE ${t.treeNodes} SET hash = $1 WHERE level = 0 AND idx = 2`, [saved])
        // Restored: the export is served and verifies (the damaged hash read back was not kept).
        const exportOk = await fetch(`${a.url}/proofs/export?session_id=${session}`)
        expect(exportOk.status).toBe(200)
        expect(verifyProvenExport(await exportOk.json(), [key.verifier]).records).toBeGreaterThan(0)
      } finally {
        await admin.end()
      }
      for (let seq = 1; seq <= 20; seq++) {
        const [fromA, fromB] = await Promise.all(
          [a.url, b.url].map(async (url) => {
            const res = await fetch(`${url}/proofs/inclusion?seq=${seq}&size=20`)
            expect(res.status).toBe(200)
            return (await res.json()) as { leaf_hash: string; inclusion_proof: string[] }
          }),
        )
        expect(fromB).toEqual(fromA)
        served.push(fromA!.inclusion_proof.map((h) => Buffer.from(h, 'base64')))
      }
      const consistency = await Promise.all(
        [a.url, b.url].map(async (url) => (await fetch(`${url}/proofs/consistency?from=7&to=20`)).json()),
      )
      expect(consistency[1]).toEqual(consistency[0])
    } finally {
      await a.sm.stop()
      await b.sm.stop()
    }
    const notes = dirs.map((dir) => listCheckpointFiles(join(dir, 'checkpoints')).at(-1)!)
    expect(notes.map((n) => n.size)).toEqual([20, 20])
    expect(readFileSync(notes[0]!.path, 'utf8')).toBe(readFileSync(notes[1]!.path, 'utf8'))
    const signed = independentOpenCheckpoint(readFileSync(notes[0]!.path, 'utf8'), key.verifierKey)!
    const pool = testPool(databaseUrl, 1)
    const leaves = await collect(postgresTreeLines(pool, t)).finally(() => pool.end())
    expect(served).toHaveLength(20)
    for (const [i, path] of served.entries()) {
      expect(independentVerifyInclusion(i, 20, independentLeafHash(leaves[i]!), path, signed.root)).toBe(true)
    }
    for (const dir of dirs) {
      const result = await cli(
        'verify',
        '--database-url',
        databaseUrl,
        '--public-key',
        key.verifierKey,
        '--checkpoints',
        join(dir, 'checkpoints'),
      )
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
    }
  }, 120_000)
})

describe('leaf order is the commit order of seq', () => {
  it('does not put a committed row into the tree while a lower seq is still being inserted', async () => {
    const databaseUrl = await createServiceDatabase(server)
    const key = keys()
    const config = loadConfig(
      {
        CARE_STORE: 'postgres',
        DATABASE_URL: databaseUrl,
        CARE_DB_OWNER_ROLE: 'care_owner',
        CARE_DATA_DIR: tempDir(),
      },
      [],
    )
    const backend = await openBackend(config, {
      transparency: { signer: key.signer, verifier: key.verifier, everyRecords: 1000, intervalMs: 60_000 },
    })
    const pool = testPool(databaseUrl, 2)
    const held = await pool.connect()
    const tlog = backend.transparency!
    const waitForSize = async (size: number) => {
      for (let i = 0; i < 200 && tlog.size < size; i++) await new Promise((r) => setTimeout(r, 25))
      return tlog.size
    }
    try {
      const first = await backend.sessions.start(startInputAt(Date.now(), { user_id: 'first' }))
      expect(first.status).toBe(201)
      expect(await waitForSize(1)).toBe(1)
      // Another writer's insert takes the next seq and stays uncommitted...
      const { rows } = await pool.query<{ body: string }>(`SELECT body FROM ${t.events} ORDER BY seq LIMIT 1`)
      const event = {
        ...eventOfBody(rows[0]!.body),
        session_id: 'ses_held_open',
        record_id: ulid(),
        user_id: 'held',
      }
      const { body, hash } = chainEvent(event, GENESIS_HASH)
      await held.query('BEGIN')
      await held.query(
        `INSERT INTO ${t.events} (session_id, session_seq, event, record_id, event_time, body, prev_hash, hash)
         VALUES ($1, 1, 'session.start', $2, $3, $4, $5, $6)`,
        [event.session_id, event.record_id, event.timestamp, body, GENESIS_HASH, hash],
      )
      // ...while a later seq commits.
      const later = await backend.sessions.start(startInputAt(Date.now(), { user_id: 'later' }))
      expect(later.status).toBe(201)
      await new Promise((r) => setTimeout(r, 600))
      expect(tlog.size).toBe(1)
      await held.query('COMMIT')
      expect(await waitForSize(3)).toBe(3)
      const leaves = await collect(postgresTreeLines(pool, t))
      expect(leaves.map((l) => JSON.parse(String(l)).user_id)).toEqual(['first', 'held', 'later'])
      expect(tlog.tree.root(3)).toEqual(rootOf(leaves))
    } finally {
      held.release()
      await pool.end()
      await backend.close()
    }
  }, 60_000)
})

describe('the persisted tree (tree_nodes, tree_heads)', () => {
  it('is resumed at the next start, rebuilt from the rows when its edge, last leaf or root is damaged, and its holes repaired after the start; checkpoints still verify', async () => {
    const databaseUrl = await createServiceDatabase(server)
    const dataDir = tempDir()
    const key = keys()
    const env = {
      CARE_STORE: 'postgres',
      DATABASE_URL: databaseUrl,
      CARE_DB_OWNER_ROLE: 'care_owner',
      CARE_DATA_DIR: dataDir,
    }
    const verify = () =>
      cli(
        'verify',
        '--database-url',
        databaseUrl,
        '--public-key',
        key.verifierKey,
        '--checkpoints',
        join(dataDir, 'checkpoints'),
      )
    const admin = testPool(superuserUrl(databaseUrl), 1)
    /** Opens and closes the backend; what it logged about the tree, its size and root. */
    const reopen = async () => {
      const said: string[] = []
      const logger = {
        info: (o: object, m: string) => said.push(`${m} ${JSON.stringify(o)}`),
        warn: (o: object, m: string) => said.push(`${m} ${JSON.stringify(o)}`),
        error: (o: object, m: string) => said.push(`${m} ${JSON.stringify(o)}`),
      }
      const backend = await openBackend(loadConfig(env, []), {
        logger,
        transparency: { signer: key.signer, verifier: key.verifier, everyRecords: 4, intervalMs: 60_000 },
      })
      const tlog = backend.transparency!
      const size = tlog.size
      const root = tlog.tree.root()
      // The start did not wait for the hole check (it runs after, in the background): wait for it here.
      const holes = await backend.treeHoleCheck?.done
      const opened = { size, root, holes, said: said.filter((m) => m.startsWith('transparency')) }
      await backend.close()
      return opened
    }
    const persisted = async () => {
      const nodes = await admin.query<{ level: number; idx: string; hash: Buffer }>(
        `SELECT level, idx, hash FROM ${t.treeNodes} ORDER BY level, idx`,
      )
      const heads = await admin.query<{ size: string; root: Buffer }>(`SELECT size, root FROM ${t.treeHeads}`)
      return { nodes: nodes.rows, heads: heads.rows.map((h) => ({ size: Number(h.size), root: h.root })) }
    }
    try {
      const { url, sm } = await startService(env, key, 4)
      try {
        await workload(url, 4)
      } finally {
        await sm.stop()
      }
      const pool = testPool(databaseUrl, 1)
      const leaves = await collect(postgresTreeLines(pool, t)).finally(() => pool.end())
      expect(leaves).toHaveLength(10)
      const root = rootOf(leaves)
      // The feed wrote every complete subtree of the 10 leaves (10 + 5 + 2 + 1) and the head.
      const written = await persisted()
      expect(written.nodes).toHaveLength(18)
      expect(written.nodes.filter((n) => n.level === 0).map((n) => n.hash)).toEqual(
        leaves.map((l) => independentLeafHash(l)),
      )
      expect(written.heads).toEqual([{ size: 10, root }])

      const resumed = await reopen()
      expect(resumed).toMatchObject({ size: 10, root })
      expect(resumed.said.join('\n')).toMatch(/resuming the persisted tree \{"size":10\}/)

      const damages: [string, string][] = [
        ['the last leaf hash', `UPDATE ${t.treeNodes} SET hash = sha256('x') WHERE level = 0 AND idx = 9`],
        [
          'a subtree on the compact range',
          `UPDATE ${t.treeNodes} SET hash = sha256('x') WHERE level = 3 AND idx = 0`,
        ],
        ['a cut level', `DELETE FROM ${t.treeNodes} WHERE level = 0 AND idx >= 4`],
        ['the persisted root', `UPDATE ${t.treeHeads} SET root = sha256('x')`],
        ['everything', `DELETE FROM ${t.treeNodes}; DELETE FROM ${t.treeHeads}`],
      ]
      for (const [what, sql] of damages) {
        await admin.query(sql)
        const rebuilt = await reopen()
        expect(rebuilt.said.join('\n'), what).toMatch(/rebuilding the tree from the rows/)
        expect(rebuilt, what).toMatchObject({ size: 10, root })
        // The rebuild wrote the tables afresh: the next start resumes again.
        expect(await persisted(), what).toEqual(written)
      }
      // Holes neither the compact range, the last leaf nor a checkpoint's root reads: the start resumes
      // (it does not look for them), the background check finds them and writes them back (a leaf from
      // its row's line, an inner hash from its children); then proofs over them verify again.
      for (const [what, sql] of [
        ['a hole inside level 0', `DELETE FROM ${t.treeNodes} WHERE level = 0 AND idx = 5`],
        ['a hole inside level 1', `DELETE FROM ${t.treeNodes} WHERE level = 1 AND idx = 1`],
        [
          'holes inside levels 0 and 1 at once',
          `DELETE FROM ${t.treeNodes} WHERE (level = 0 AND idx IN (2, 3)) OR (level = 1 AND idx IN (1, 3))`,
        ],
      ] as const) {
        await admin.query(sql)
        const resumedOver = await reopen()
        expect(resumedOver.said.join('\n'), what).toMatch(/resuming the persisted tree/)
        expect(resumedOver.said.join('\n'), what).toMatch(/missing hashes; recomputed and written/)
        expect(resumedOver, what).toMatchObject({ size: 10, root, holes: { state: 'repaired' } })
        expect(await persisted(), what).toEqual(written)
        const fromTable = new TreeProofs({ readNodes: (keys) => readTreeNodes(admin, t, keys) })
        for (let index = 0; index < 10; index++) {
          const proof = await fromTable.inclusion(index, 10)
          expect(proof.root, `${what} ${index}`).toEqual(root)
          expect(proof.leafHash).toEqual(independentLeafHash(leaves[index]!))
        }
      }
      expect((await reopen()).holes).toMatchObject({ state: 'ok', found: 0 })

      // A checkpointed prefix that no longer matches its signed root is rebuilt too (the head still fits):
      // a checkpoint at 4 (the one this key signs for those rows), then a hash only its root uses.
      writeFileSync(
        join(dataDir, 'checkpoints', checkpointFileName(4)),
        signCheckpoint({ origin: ORIGIN, size: 4, rootHash: rootOf(leaves.slice(0, 4)) }, [key.signer]),
      )
      await admin.query(`UPDATE ${t.treeNodes} SET hash = sha256('x') WHERE level = 2 AND idx = 0`)
      await admin.query(`UPDATE ${t.treeHeads} SET root = $1`, [root])
      const inner = await reopen()
      expect(inner.said.join('\n')).toMatch(/rebuilding the tree from the rows/)
      expect(await persisted()).toEqual(written)

      // The service reports the hole check in /readyz (store.tree_hole_check) once ready.
      await admin.query(`DELETE FROM ${t.treeNodes} WHERE level = 1 AND idx = 0`)
      const again = await startService(env, key, 4)
      try {
        let check: { state?: string; found?: number; repaired?: number } | undefined
        for (let i = 0; i < 100 && check?.state !== 'repaired'; i++) {
          const ready = await fetch(`${again.url}/readyz`)
          expect(ready.status).toBe(200)
          check = ((await ready.json()) as { store?: { tree_hole_check?: typeof check } }).store
            ?.tree_hole_check
          if (check?.state !== 'repaired') await new Promise((r) => setTimeout(r, 50))
        }
        expect(check).toMatchObject({ state: 'repaired', found: 1, repaired: 1 })
        expect(await persisted()).toEqual(written)
        await workload(again.url, 2, 'later')
      } finally {
        await again.sm.stop()
      }
      const result = await verify()
      expect(result.stderr).toBe('')
      expect(result.stdout).toMatch(/^OK: 15 record\(s\).*newest verified checkpoint: size 15 /)
      expect((await persisted()).heads.map((h) => h.size)).toEqual([15])
    } finally {
      await admin.end()
    }
  }, 240_000)
})

describe('a PostgreSQL service killed while appending and signing', () => {
  let instance: Instance | undefined

  afterAll(async () => {
    await instance?.stop()
  })

  it('leaves a database whose signed checkpoints all verify, and the tree is rebuilt at the next start', async () => {
    assertBuilt()
    const databaseUrl = await createServiceDatabase(server)
    const dataDir = tempDir()
    const key = keys()
    const keyFile = join(dataDir, 'log.skey')
    writeFileSync(keyFile, `${key.signerKey}\n`)
    const env = {
      ...postgresInstanceEnv(databaseUrl),
      CARE_DATA_DIR: dataDir,
      CARE_CHECKPOINT_KEY_FILE: keyFile,
      CARE_CHECKPOINT_EVERY: '3',
      CARE_CHECKPOINT_INTERVAL_MS: '50',
    }
    const verify = () =>
      cli(
        'verify',
        '--database-url',
        databaseUrl,
        '--public-key',
        key.verifierKey,
        '--checkpoints',
        join(dataDir, 'checkpoints'),
      )
    instance = await startInstance(env)
    expect(
      (await postJson(`${instance.url}/sessions.start`, requestBody({ user_id: 'first' })))?.status,
    ).toBe(201)
    await waitForCheckpoint(instance.url, 1)
    await instance.stop()
    for (let round = 0; round < 3; round++) {
      instance = await startInstance(env)
      const starts = Array.from({ length: 40 }, (_, i) =>
        postJson(`${instance!.url}/sessions.start`, requestBody({ user_id: `crash-${round}-${i}` })),
      )
      // Killed while requests are in flight and checkpoints are being signed.
      await starts[0]
      await new Promise((r) => setTimeout(r, 20 + 40 * round))
      await instance.kill()
      instance = undefined
      await Promise.allSettled(starts)
      const result = await verify()
      expect(result.stderr, `round ${round}: ${result.stdout}`).toBe('')
      expect(result.code).toBe(0)
    }
    instance = await startInstance(env)
    const res = await postJson(`${instance.url}/sessions.start`, requestBody({ user_id: 'after-crash' }))
    expect(res?.status).toBe(201)
    await instance.stop()
    instance = undefined
    const final = await verify()
    expect(final.code).toBe(0)
    const pool = testPool(databaseUrl, 1)
    const rows = await collect(postgresTreeLines(pool, t)).finally(() => pool.end())
    expect(final.stdout).toMatch(
      new RegExp(`^OK: ${rows.length} record\\(s\\).*newest verified checkpoint: size ${rows.length} `),
    )
    // The persisted tree (resumed or rebuilt after each kill) ends at the rows' root.
    const check = testPool(databaseUrl, 1)
    const heads = await check
      .query<{ size: string; root: Buffer }>(`SELECT size, root FROM ${t.treeHeads}`)
      .finally(() => check.end())
    expect(heads.rows.map((h) => [Number(h.size), h.root.toString('base64')])).toEqual([
      [rows.length, rootOf(rows).toString('base64')],
    ])
  }, 180_000)
})
