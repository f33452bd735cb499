// PostgreSQL Merkle tree from its table (issue #17): a persisted tree of BENCH_TREE_LEAVES leaves
// (default 1,000,000) is written straight into tree_nodes/tree_heads (built level by level in SQL,
// the last leaf a real row's line), then a service instance with a checkpoint key starts over it.
// Measured per build: time to ready, the instance's RSS after start, GET /proofs/inclusion latency
// (HTTP, random records), and in this process the proof generation itself (one tree_nodes query + hashing).
//
//   pnpm turbo run build --filter=@care/session-manager...
//   node services/session-manager/bench/pg-tree.mjs                      # starts a throwaway PostgreSQL
//   BENCH_BASE=/path/to/other/services/session-manager/dist/main.js node …  # also that build, same run
//
// Env: BENCH_TREE_LEAVES (default 1,000,000), BENCH_PROOFS (HTTP proofs per build, default 300),
// BENCH_HOLE_CHECKS=0 skips timing the background hole check (five passes over the table: minutes at 10M).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { encodeRecord } from '@care/event-log'
import { generateNoteKey, leafHash, TreeProofs, verifyConsistency, verifyInclusion } from '@care/tlog'
import pg from 'pg'
import { ulid } from 'ulid'
import { eventOfBody } from '../dist/postgres/event-chain.js'
import { schemaNames } from '../dist/postgres/schema-names.js'
import { TreeHoleCheck } from '../dist/postgres/tree-holes.js'
import { loadPersistedTree, readTreeNodes } from '../dist/postgres/tree-table.js'
import { startPostgres } from './throwaway-postgres.mjs'

const LEAVES = Number(process.env.BENCH_TREE_LEAVES ?? 1_000_000)
const PROOFS = Number(process.env.BENCH_PROOFS ?? 300)
const HOLE_CHECKS = process.env.BENCH_HOLE_CHECKS !== '0'
const MAIN_JS = new URL('../dist/main.js', import.meta.url).pathname
const BASE_JS = process.env.BENCH_BASE
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const t = schemaNames()

/** A service instance of build `mainJs`; resolves once /readyz answers 200, with its pid and start time. */
async function startInstance(mainJs, env) {
  const started = performance.now()
  const child = spawn(process.execPath, [mainJs], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /"port":(\d+)/.exec(line)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)))
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 6000; i++) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break
    await sleep(20)
  }
  return {
    url,
    readyMs: performance.now() - started,
    rssMb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve)
        child.kill('SIGTERM')
      }),
  }
}

const percentile = (xs, p) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]

/** Writes a tree of `LEAVES` leaves into tree_nodes (in SQL, level by level) and its head. */
async function writeTree(pool) {
  const { rows } = await pool.query(`SELECT seq, body FROM ${t.events} ORDER BY seq LIMIT 1`)
  const prevLineHash = 'ab'.repeat(32)
  const { record, line } = encodeRecord(eventOfBody(rows[0].body), LEAVES, prevLineHash)
  const started = performance.now()
  await pool.query(`DELETE FROM ${t.treeNodes}`)
  await pool.query(`DELETE FROM ${t.treeHeads}`)
  await pool.query(
    `INSERT INTO ${t.treeNodes} (level, idx, hash)
     SELECT 0, i, sha256('\\x00'::bytea || convert_to('leaf ' || i, 'UTF8')) FROM generate_series(0, $1::bigint - 2) AS i`,
    [LEAVES],
  )
  await pool.query(`INSERT INTO ${t.treeNodes} (level, idx, hash) VALUES (0, $1, $2)`, [
    LEAVES - 1,
    leafHash(line.subarray(0, line.length - 1)),
  ])
  for (let level = 0; 2 ** (level + 1) <= LEAVES; level++) {
    // Statistics of the level just written: without them the planner may scan a whole level of the
    // index for every pair (at 10M leaves the level 1 -> 2 join ran for 28 minutes before it was cut).
    await pool.query(`ANALYZE ${t.treeNodes}`)
    await pool.query(
      `INSERT INTO ${t.treeNodes} (level, idx, hash)
       SELECT $1::smallint + 1, a.idx / 2, sha256('\\x01'::bytea || a.hash || b.hash)
       FROM ${t.treeNodes} a JOIN ${t.treeNodes} b ON b.level = a.level AND b.idx = a.idx + 1
       WHERE a.level = $1 AND a.idx % 2 = 0`,
      [level],
    )
  }
  const root = await new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) }).root(LEAVES)
  await pool.query(
    `INSERT INTO ${t.treeHeads} (size, event_seq, line_hash, prev_line_hash, root) VALUES ($1, $2, $3, $4, $5)`,
    [LEAVES, rows[0].seq, record.hash, prevLineHash, root],
  )
  // The background hole check (every hash below the head present; not on the start path): before the
  // table was vacuumed (fresh rows, the visibility map unset: the counts visit the heap) and after
  // (index-only); without the pause between chunks (the work) and with the default pause (wall time).
  const checkMs = async (pauseMs) => {
    const status = await TreeHoleCheck.start(pool, t, LEAVES, { pauseMs }).done
    if (status.state !== 'ok') throw new Error(`the bench tree has a hole: ${JSON.stringify(status)}`)
    return status.durationMs
  }
  if (HOLE_CHECKS) {
    const fresh = [await checkMs(0), await checkMs(0)]
    await pool.query(`VACUUM ANALYZE ${t.treeNodes}`)
    const vacuumed = [await checkMs(0), await checkMs(0)]
    const paused = await checkMs(undefined)
    console.log(
      `background hole check (TreeHoleCheck, after ready): no pause: before VACUUM ${fresh.join(' / ')} ms, after ${vacuumed.join(' / ')} ms (first / second run); with the default pause between chunks ${paused} ms`,
    )
  } else {
    await pool.query(`VACUUM ANALYZE ${t.treeNodes}`)
  }
  const { rows: count } = await pool.query(`SELECT count(*)::bigint AS n FROM ${t.treeNodes}`)
  console.log(
    `wrote a ${LEAVES.toLocaleString('en-US')}-leaf tree (${Number(count[0].n).toLocaleString('en-US')} tree_nodes rows) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  )
  return root
}

const summary = (xs) =>
  `p50 ${percentile(xs, 0.5).toFixed(2)} ms, p99 ${percentile(xs, 0.99).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`

/**
 * Proof generation in this process against the table: inclusion and consistency proofs of random
 * records (each one `tree_nodes` query + hashing, verified), the query sent as an unnamed statement (what
 * the service does: parse + plan per query) and as a named prepared one, alternating per proof so both
 * see the same load; `SELECT 1` round trips as the floor; the server's own time (EXPLAIN ANALYZE, BUFFERS)
 * and the client's GC pauses over the same loop.
 */
async function measureProofs(pool, root) {
  // readTreeNodes sends a named statement (what the service does); `unnamed` strips the name (parse +
  // plan per query, what it did before).
  const unnamed = {
    query: (query, values) =>
      pool.query(typeof query === 'string' ? query : { text: query.text, values: query.values }, values),
  }
  const byShape = {
    unnamed: new TreeProofs({ readNodes: (keys) => readTreeNodes(unnamed, t, keys) }),
    prepared: new TreeProofs({ readNodes: (keys) => readTreeNodes(pool, t, keys) }),
  }
  const gc = []
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gc.push(entry.duration)
  })
  observer.observe({ entryTypes: ['gc'] })
  const times = {
    inclusion: { unnamed: [], prepared: [] },
    consistency: { unnamed: [], prepared: [] },
    ping: [],
  }
  const loopStarted = performance.now()
  for (let i = 0; i < 1000; i++) {
    const order = i % 2 === 0 ? ['unnamed', 'prepared'] : ['prepared', 'unnamed']
    const index = Math.floor(Math.random() * LEAVES)
    let to = 2 + Math.floor(Math.random() * (LEAVES - 1))
    if (i % 10 === 0) to = LEAVES
    const from = 1 + Math.floor(Math.random() * (to - 1))
    for (const shape of order) {
      const t1 = performance.now()
      const got = await byShape[shape].inclusion(index, LEAVES)
      times.inclusion[shape].push(performance.now() - t1)
      verifyInclusion(index, LEAVES, got.leafHash, got.proof, root)
      const t2 = performance.now()
      const c = await byShape[shape].consistency(from, to)
      times.consistency[shape].push(performance.now() - t2)
      verifyConsistency(from, to, c.proof, c.root1, c.root2)
      if (to === LEAVES && !c.root2.equals(root)) throw new Error('consistency proof: wrong root')
    }
    const t3 = performance.now()
    await pool.query('SELECT 1')
    times.ping.push(performance.now() - t3)
  }
  const loopMs = performance.now() - loopStarted
  observer.disconnect()
  const n = LEAVES.toLocaleString('en-US')
  for (const kind of ['inclusion', 'consistency']) {
    for (const shape of ['unnamed', 'prepared']) {
      const xs = times[kind][shape]
      console.log(
        `${kind} proof generation from tree_nodes, ${n} leaves, ${shape} statement, 1000 random: ${summary(xs)} (first 100: p50 ${percentile(xs.slice(0, 100), 0.5).toFixed(2)} ms; last 900: ${summary(xs.slice(100))})`,
      )
    }
  }
  console.log(`SELECT 1 round trip over the same pool, 1000: ${summary(times.ping)}`)
  console.log(
    `client GC during the ${(loopMs / 1000).toFixed(1)} s loop: ${gc.length} pauses, total ${gc.reduce((a, b) => a + b, 0).toFixed(1)} ms, max ${Math.max(0, ...gc).toFixed(2)} ms`,
  )
  // The server's side of one inclusion proof's query: plan, buffers (hit = shared_buffers, read = OS).
  const index = Math.floor(Math.random() * LEAVES)
  let captured
  const capture = {
    query: async (query, values) => {
      captured =
        typeof query === 'string' ? { text: query, values } : { text: query.text, values: query.values }
      return pool.query(query, values)
    },
  }
  await new TreeProofs({ readNodes: (keys) => readTreeNodes(capture, t, keys) }).inclusion(index, LEAVES)
  for (const round of ['first', 'again']) {
    const { rows } = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${captured.text}`, captured.values)
    console.log(
      `EXPLAIN (ANALYZE, BUFFERS) of one inclusion proof's query (${captured.values[0].length} keys, ${round}):\n  ${rows.map((r) => r['QUERY PLAN']).join('\n  ')}`,
    )
  }
}

async function measureBuild(name, mainJs, env) {
  const dataDir = mkdtempSync(join(tmpdir(), 'care-pg-tree-data-'))
  try {
    const instance = await startInstance(mainJs, { ...env, CARE_DATA_DIR: dataDir })
    try {
      const rss = instance.rssMb()
      const latencies = []
      for (let i = 0; i < PROOFS; i++) {
        const seq = 1 + Math.floor(Math.random() * LEAVES)
        const t0 = performance.now()
        const res = await fetch(`${instance.url}/proofs/inclusion?seq=${seq}&size=${LEAVES}`)
        if (res.status !== 200) throw new Error(`${name}: /proofs/inclusion answered ${res.status}`)
        await res.json()
        latencies.push(performance.now() - t0)
      }
      console.log(
        `${name}: ready in ${(instance.readyMs / 1000).toFixed(2)} s, RSS after start ${rss.toFixed(0)} MB, ` +
          `GET /proofs/inclusion p50 ${percentile(latencies, 0.5).toFixed(2)} ms p99 ${percentile(latencies, 0.99).toFixed(2)} ms ` +
          `(${PROOFS} random records), RSS after ${instance.rssMb().toFixed(0)} MB`,
      )
    } finally {
      await instance.stop()
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function main() {
  const server = await startPostgres('care-pg-tree-bench-')
  const tmp = mkdtempSync(join(tmpdir(), 'care-pg-tree-key-'))
  try {
    const keyFile = join(tmp, 'log.skey')
    writeFileSync(keyFile, `${generateNoteKey('bench.example/pg-tree').signerKey}\n`)
    const env = { CARE_STORE: 'postgres', DATABASE_URL: server.url }
    // One real row (and the migrated schema), written by the service without a tree.
    const seed = await startInstance(MAIN_JS, { ...env, CARE_DATA_DIR: tmp, CARE_TRANSPARENCY: 'off' })
    const res = await fetch(`${seed.url}/sessions.start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        schema_version: '1.1',
        record_id: ulid(),
        user_id: 'bench',
        timestamp: new Date().toISOString(),
        source: 'ui',
        origin: 'human',
        performer_id: 'caregiver-1',
      }),
    })
    if (res.status !== 201) throw new Error(`seed start answered ${res.status}: ${await res.text()}`)
    await seed.stop()
    const pool = new pg.Pool({ connectionString: server.url, max: 2 })
    try {
      const root = await writeTree(pool)
      // In this process: what a start reads, and the proof generation itself.
      let rowsRead = 0
      const counted = {
        query: async (text, values) => {
          const r = await pool.query(text, values)
          rowsRead += r.rows.length
          return r
        },
      }
      const t0 = performance.now()
      const loaded = await loadPersistedTree(counted, t, async () => undefined)
      if ('rebuild' in loaded) throw new Error(`the bench tree was not resumed: ${loaded.rebuild}`)
      console.log(
        `start to ready in this process (loadPersistedTree): ${(performance.now() - t0).toFixed(1)} ms, ${rowsRead} rows read (of ~${(2 * LEAVES).toLocaleString('en-US')})`,
      )
      await measureProofs(pool, root)
    } finally {
      await pool.end()
    }
    const withKey = { ...env, CARE_CHECKPOINT_KEY_FILE: keyFile }
    await measureBuild('this build', MAIN_JS, withKey)
    if (BASE_JS) await measureBuild(`base ${BASE_JS}`, BASE_JS, withKey)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
    await server.stop()
  }
}

await main()
