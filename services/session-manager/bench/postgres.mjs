// PostgreSQL store benchmark: POST /sessions.start through the session-manager on PostgreSQL vs plain
// single-row INSERTs through `pg` with 10 connections, then 1 vs 2 instances on one database.
//
//   pnpm turbo run build --filter=@care/session-manager...
//   node services/session-manager/bench/postgres.mjs            # starts a throwaway PostgreSQL server
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench node services/session-manager/bench/postgres.mjs
//
// Env: BENCH_SECONDS (default 8 per run), BENCH_CONNECTIONS (HTTP connections, default 64),
// BENCH_PROFILE_DIR (CPU profiles of the service instances),
// BENCH_ONLY=tree (only the Merkle tree A/B: durable starts with the tree and signed checkpoints vs
// CARE_TRANSPARENCY=off, alternating rounds, plus inclusion-proof time on a large in-memory tree),
// BENCH_ONLY=start (issue 18: plain INSERTs, the in-process start and POST /sessions.start on PostgreSQL in
// BENCH_ROUNDS alternating rounds at BENCH_CONNECTIONS, same-run ratios and server CPU per start;
// BENCH_WRITE_CONCURRENCY=1,4 adds in-process runs with those batch concurrencies; each round also drives
// an "HTTP + plain INSERT" server: this script re-run as a child with BENCH_INSERT_SERVER=<url>, the same
// Hono + @hono/node-server stack answering POST /sessions.start with one pooled single-row INSERT
// (10 connections) and no validation, hashing or batching: what HTTP costs here, apart from our store;
// BENCH_BASE=<another build's dist/main.js> adds that build on PostgreSQL to the same rounds).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { encodeRecord } from '@care/event-log'
import { generateNoteKey, MemoryNodeStore, MerkleTree } from '@care/tlog'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { Hono } from 'hono'
import pg from 'pg'
import { monotonicFactory } from 'ulid'
import { createIdFactory } from '../dist/ids/id-factory.js'
import { openPostgresSessions } from '../dist/postgres/postgres-session-repository.js'
import { startPostgres } from './throwaway-postgres.mjs'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64)
const PLAIN_CONNECTIONS = 10
const MAIN_JS = new URL('../dist/main.js', import.meta.url).pathname
if (!existsSync(MAIN_JS)) {
  console.error(`${MAIN_JS} is missing: run pnpm turbo run build --filter=@care/session-manager... first`)
  process.exit(1)
}

const recordId = monotonicFactory()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function startBody() {
  return JSON.stringify({
    schema_version: '1.1',
    record_id: recordId(),
    user_id: `user-${Math.floor(Math.random() * 100_000)}`,
    timestamp: new Date().toISOString(),
    source: 'ui',
    origin: 'human',
    performer_id: 'caregiver-1',
  })
}

/** Plain single-row INSERTs (autocommit, one per round trip) on `connections` connections for `seconds`. */
async function plainInserts(url, seconds, connections) {
  const pool = new pg.Pool({ connectionString: url, max: connections })
  await pool.query(`DROP TABLE IF EXISTS bench_plain`)
  await pool.query(PLAIN_TABLE.replace('%s', 'bench_plain'))
  const body = `${startBody().slice(0, -1)},"padding":"${'x'.repeat(400)}"}`
  let count = 0
  const deadline = performance.now() + seconds * 1000
  const worker = async () => {
    while (performance.now() < deadline) {
      await pool.query(
        'INSERT INTO bench_plain (session_id, record_id, input_record_id, event_time, body, hash) VALUES ($1, $2, $3, now(), $4, $5)',
        [recordId(), recordId(), recordId(), body, 'f'.repeat(64)],
      )
      count++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsed = (performance.now() - started) / 1000
  await pool.end()
  return { rate: count / elapsed, count }
}

const PLAIN_TABLE = `CREATE TABLE IF NOT EXISTS %s (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, session_id text NOT NULL, record_id text NOT NULL UNIQUE,
    input_record_id text UNIQUE, event_time timestamptz NOT NULL, body text NOT NULL, hash text NOT NULL)`

/**
 * The "HTTP + plain INSERT" server (run as `BENCH_INSERT_SERVER=<database url> node bench/postgres.mjs`):
 * Hono on @hono/node-server, POST /sessions.start parses the JSON body and does one single-row INSERT
 * (autocommit, a pool of 10 connections) of it, answering 201 with ids once it is committed. Prints
 * `{"port":…}` like the service.
 */
async function insertServer(url) {
  const pool = new pg.Pool({ connectionString: url, max: PLAIN_CONNECTIONS })
  await pool.query(PLAIN_TABLE.replace('%s', 'bench_http_plain'))
  const app = new Hono()
  app.post('/sessions.start', async (c) => {
    const input = await c.req.json()
    const sessionId = recordId()
    const eventId = recordId()
    await pool.query(
      'INSERT INTO bench_http_plain (session_id, record_id, input_record_id, event_time, body, hash) VALUES ($1, $2, $3, $4, $5, $6)',
      [sessionId, eventId, input.record_id, input.timestamp, JSON.stringify(input), 'f'.repeat(64)],
    )
    return c.json({ ...input, event: 'session.start', session_id: sessionId, record_id: eventId }, 201)
  })
  app.get('/readyz', (c) => c.json({ ok: true }))
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
    console.log(`{"port":${info.port},"msg":"listening"}`)
  })
  process.once('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))))
}

/** The lifecycle's start on PostgreSQL in this process, `callers` concurrent callers: the store without HTTP. */
async function inProcessStarts(url, seconds, callers, writeConcurrency) {
  const service = await openPostgresSessions({
    ...(writeConcurrency === undefined ? {} : { writeConcurrency }),
    policy: { idleTimeoutMs: 1_800_000, maxDurationMs: 86_400_000, retryWindowMs: 86_400_000 },
    newId: createIdFactory(),
    database: { url },
    schema: 'care_bench_inprocess',
    timers: false,
  })
  let count = 0
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < deadline) {
        await service.start(JSON.parse(startBody()))
        count++
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  await service.close()
  return { rate: count / elapsed, count }
}

// BENCH_PROFILE_DIR: run each service instance under `node --cpu-prof` writing there (issue 18);
// summarise with `node bench/profile-summary.mjs <file>`.
const PROFILE_ARGS = process.env.BENCH_PROFILE_DIR
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
  : []

function startInstance(env, script = MAIN_JS) {
  const child = spawn(process.execPath, [...PROFILE_ARGS, script], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /"port":(\d+)/.exec(line)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)))
  })
  return (async () => {
    const url = `http://127.0.0.1:${await port}`
    while (
      !(await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      await sleep(20)
    return {
      url,
      pid: child.pid,
      stop: () =>
        new Promise((resolve) => {
          child.once('exit', resolve)
          child.kill('SIGTERM')
        }),
    }
  })()
}

function cannon(url, seconds, connections) {
  return autocannon({
    url: `${url}/sessions.start`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: startBody() }),
      },
    ],
  })
}

/** Drives `instances` at once (connections split evenly) and returns summed 2xx/s and worst p99. */
async function serviceRun(instances, seconds) {
  const per = Math.max(1, Math.floor(CONNECTIONS / instances.length))
  await Promise.all(instances.map((i) => cannon(i.url, 1, per))) // warm-up: JIT, pool connections
  const results = await Promise.all(instances.map((i) => cannon(i.url, seconds, per)))
  const ok = results.reduce((n, r) => n + r['2xx'], 0)
  const bad = results.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0)
  return {
    rate: ok / seconds,
    ok,
    bad,
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
  }
}

/**
 * Same-run A/B on PostgreSQL: POST /sessions.start with the Merkle tree and signed checkpoints (every
 * 1000 records) against CARE_TRANSPARENCY=off, alternating rounds on fresh schemas; then the time of an
 * inclusion proof in a tree of BENCH_TREE_LEAVES leaves (default 1,000,000; memory as the service keeps it).
 */
async function treeOverhead(url) {
  const tmp = mkdtempSync(join(tmpdir(), 'care-pg-tree-bench-'))
  try {
    const keyFile = join(tmp, 'bench.skey')
    writeFileSync(keyFile, generateNoteKey('bench.example/pg').signerKey)
    const base = (schema) => ({
      CARE_STORE: 'postgres',
      DATABASE_URL: url,
      CARE_DB_SCHEMA: schema,
      CARE_IDLE_TIMEOUT: '30m',
    })
    const variants = {
      off: (n) => ({ ...base(`care_bench_tree_off_${n}`), CARE_TRANSPARENCY: 'off' }),
      on: (n) => ({
        ...base(`care_bench_tree_on_${n}`),
        CARE_DATA_DIR: join(tmp, `on-${n}`),
        CARE_CHECKPOINT_KEY_FILE: keyFile,
        CARE_CHECKPOINT_EVERY: '1000',
      }),
    }
    const runs = { off: [], on: [] }
    for (let round = 0; round < 2; round++) {
      for (const name of round === 0 ? ['off', 'on'] : ['on', 'off']) {
        const [instance] = [await startInstance(variants[name](round))]
        const r = await serviceRun([instance], SECONDS)
        await instance.stop()
        runs[name].push(r)
        console.log(`tree ${name} round ${round + 1}: ${Math.round(r.rate)}/s p99 ${r.p99} ms, ${r.bad} bad`)
      }
    }
    const mean = (xs) => xs.reduce((a, x) => a + x.rate, 0) / xs.length
    const leaves = Number(process.env.BENCH_TREE_LEAVES ?? 1_000_000)
    const tree = new MerkleTree(new MemoryNodeStore())
    const leaf = Buffer.alloc(200, 0x61)
    for (let i = 0; i < leaves; i++) {
      leaf.writeUInt32BE(i, 0)
      tree.append(leaf)
    }
    // CPU per record on the feed's path: the row's tree line (canonical JSON + SHA-256), leaf hash, append.
    const lineTree = new MerkleTree(new MemoryNodeStore())
    const event = JSON.parse(startBody())
    const perRecord = 100_000
    let prev = '0'.repeat(64)
    const t1 = performance.now()
    for (let i = 0; i < perRecord; i++) {
      const { record, line } = encodeRecord(event, i + 1, prev)
      prev = record.hash
      lineTree.append(line.subarray(0, line.length - 1))
    }
    const perRecordUs = ((performance.now() - t1) * 1000) / perRecord
    console.log(`tree CPU per record (line + hashes + append): ${perRecordUs.toFixed(1)} µs`)
    const samples = 2000
    const t0 = performance.now()
    for (let i = 0; i < samples; i++) tree.inclusionProof(Math.floor(Math.random() * leaves), leaves)
    const proofUs = ((performance.now() - t0) * 1000) / samples
    console.log(
      `tree on / off: ${Math.round(mean(runs.on))} / ${Math.round(mean(runs.off))} = ${(mean(runs.on) / mean(runs.off)).toFixed(3)} (goal >= 0.95); ` +
        `inclusion proof in a ${leaves.toLocaleString('en-US')}-leaf tree: ${proofUs.toFixed(1)} µs`,
    )
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** CPU time (ms) of a process so far, user and system, from /proc (Linux). */
function cpuMsOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 }
  } catch {
    return { user: Number.NaN, system: Number.NaN }
  }
}

/**
 * CPU time (ms) of a PostgreSQL server so far: the postmaster, its live backends, and (as the
 * postmaster's reaped-children time) every backend that already exited.
 */
function serverCpuMs(postmaster) {
  if (postmaster === undefined) return Number.NaN
  let ms = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')
      if (Number(entry) === postmaster) {
        ms += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10
      } else if (Number(fields[1]) === postmaster) {
        ms += (Number(fields[11]) + Number(fields[12])) * 10
      }
    } catch {
      // exited meanwhile
    }
  }
  return ms
}

/** Transactions committed in the database so far (PostgreSQL publishes them within about a second). */
async function commitsSoFar(url) {
  await sleep(1100)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query(
      'SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()',
    )
    return Number(rows[0].n)
  } finally {
    await client.end()
  }
}

/** Runs `fn` and adds this process's and the server's CPU time per operation (µs) to its result. */
async function withCpu(postmaster, url, fn) {
  const commits = await commitsSoFar(url)
  const own = process.cpuUsage()
  const server = serverCpuMs(postmaster)
  const result = await fn()
  const used = process.cpuUsage(own)
  const serverMs = serverCpuMs(postmaster) - server
  const n = Math.max(1, result.count)
  return {
    ...result,
    clientUs: (used.user + used.system) / n,
    serverUs: (serverMs * 1000) / n,
    perCommit: n / Math.max(1, (await commitsSoFar(url)) - commits),
  }
}

/**
 * Drives one HTTP server (a service instance or the HTTP + INSERT server) for `SECONDS` and measures,
 * per 2xx answer: the server process's CPU (user, system), PostgreSQL's CPU and starts per commit.
 */
async function httpRun(instance, url, postmaster) {
  const commitsBefore = await commitsSoFar(url)
  const cpuBefore = cpuMsOf(instance.pid)
  const serverBefore = serverCpuMs(postmaster)
  const http = await cannon(instance.url, SECONDS, CONNECTIONS)
  const serverMs = serverCpuMs(postmaster) - serverBefore
  const cpuAfter = cpuMsOf(instance.pid)
  const n = Math.max(1, http['2xx'])
  const perCommit = http['2xx'] / Math.max(1, (await commitsSoFar(url)) - commitsBefore)
  return {
    rate: http['2xx'] / SECONDS,
    p99: http.latency.p99,
    bad: http.non2xx + http.errors,
    userUs: ((cpuAfter.user - cpuBefore.user) * 1000) / n,
    systemUs: ((cpuAfter.system - cpuBefore.system) * 1000) / n,
    serverUs: (serverMs * 1000) / n,
    perCommit,
  }
}

/**
 * Same-run rounds (issue 18): plain INSERTs, in-process starts, POST /sessions.start on one PostgreSQL
 * instance, the HTTP + plain INSERT server, and the service on the JSONL store.
 */
async function startRounds(url, postmaster) {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  const concurrencies = (process.env.BENCH_WRITE_CONCURRENCY ?? '').split(',').filter(Boolean).map(Number)
  const instance = await startInstance({
    CARE_STORE: 'postgres',
    DATABASE_URL: url,
    CARE_DB_SCHEMA: 'care_bench_rounds',
    CARE_IDLE_TIMEOUT: '30m',
  })
  // The same HTTP stack on the embedded JSONL store (durable too), and bare HTTP + one INSERT per request.
  const dataDir = mkdtempSync(join(tmpdir(), 'care-file-bench-'))
  const file = await startInstance({ CARE_DATA_DIR: dataDir })
  const httpInsert = await startInstance({ BENCH_INSERT_SERVER: url }, new URL(import.meta.url).pathname)
  // BENCH_BASE=<another build's dist/main.js>: that build on PostgreSQL too, in the same rounds.
  const base = process.env.BENCH_BASE
    ? await startInstance(
        {
          CARE_STORE: 'postgres',
          DATABASE_URL: url,
          CARE_DB_SCHEMA: 'care_bench_rounds_base',
          CARE_IDLE_TIMEOUT: '30m',
        },
        process.env.BENCH_BASE,
      )
    : undefined
  if (PROFILE_ARGS.length > 0)
    console.log(
      `profiled pids: PostgreSQL service ${instance.pid}, JSONL service ${file.pid}, HTTP + INSERT ${httpInsert.pid}`,
    )
  // Warm-up long enough for the JIT to optimise the request path (a few thousand requests).
  const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 5)
  await Promise.all([
    cannon(instance.url, warmup, CONNECTIONS),
    cannon(file.url, warmup, CONNECTIONS),
    cannon(httpInsert.url, warmup, CONNECTIONS),
    ...(base ? [cannon(base.url, warmup, CONNECTIONS)] : []),
  ])
  const rows = []
  const cpuOf = (r) =>
    `[CPU µs/op: client ${r.clientUs.toFixed(0)}, server ${r.serverUs.toFixed(0)}; ${r.perCommit.toFixed(1)} per commit]`
  const httpCpu = (r) =>
    `[CPU µs/op: process ${r.userUs.toFixed(0)} user + ${r.systemUs.toFixed(0)} system, PostgreSQL ${r.serverUs.toFixed(0)}; ${r.perCommit.toFixed(1)} per commit]`
  try {
    for (let round = 1; round <= rounds; round++) {
      const plain = await withCpu(postmaster, url, () => plainInserts(url, SECONDS, PLAIN_CONNECTIONS))
      const inProcess = await withCpu(postmaster, url, () => inProcessStarts(url, SECONDS, CONNECTIONS))
      const variants = []
      for (const c of concurrencies)
        variants.push([
          c,
          await withCpu(postmaster, url, () => inProcessStarts(url, SECONDS, CONNECTIONS, c)),
        ])
      // Rotate the order of the HTTP-on-PostgreSQL runs between rounds.
      const targets = [['http', instance], ['bare', httpInsert], ...(base ? [['base', base]] : [])]
      const shift = (round - 1) % targets.length
      const runs = {}
      for (const [name, target] of [...targets.slice(shift), ...targets.slice(0, shift)])
        runs[name] = await httpRun(target, url, postmaster)
      const { http, bare } = runs
      const [load] = loadavg()
      const onFile = await httpRun(file, url, postmaster)
      rows.push({
        plain: plain.rate,
        inProcess: inProcess.rate,
        http: http.rate,
        bare: bare.rate,
        ...(runs.base ? { base: runs.base.rate } : {}),
      })
      console.log(
        `round ${round} (load ${load.toFixed(1)}): plain ${Math.round(plain.rate)}/s ${cpuOf(plain)}, ` +
          `in-process ${Math.round(inProcess.rate)}/s (${(inProcess.rate / plain.rate).toFixed(2)}) ${cpuOf(inProcess)}, ` +
          variants
            .map(
              ([c, r]) =>
                `in-process c=${c} ${Math.round(r.rate)}/s (${(r.rate / plain.rate).toFixed(2)}) ${cpuOf(r)}, `,
            )
            .join('') +
          `HTTP + plain INSERT ${Math.round(bare.rate)}/s (${(bare.rate / plain.rate).toFixed(2)}), p99 ${bare.p99} ms, ${bare.bad} bad ${httpCpu(bare)}, ` +
          `HTTP on PostgreSQL ${Math.round(http.rate)}/s (${(http.rate / plain.rate).toFixed(2)}; ${(http.rate / bare.rate).toFixed(2)} of HTTP + INSERT), p99 ${http.p99} ms, ` +
          `${http.bad} bad ${httpCpu(http)}, ` +
          (runs.base
            ? `base build ${Math.round(runs.base.rate)}/s (${(runs.base.rate / plain.rate).toFixed(2)}; this/base ${(http.rate / runs.base.rate).toFixed(2)}), p99 ${runs.base.p99} ms ${httpCpu(runs.base)}, `
            : '') +
          `HTTP on the JSONL store ${Math.round(onFile.rate)}/s [service ${(onFile.userUs + onFile.systemUs).toFixed(0)} µs CPU/start]`,
      )
    }
  } finally {
    await Promise.all([instance.stop(), file.stop(), httpInsert.stop(), base?.stop()])
    rmSync(dataDir, { recursive: true, force: true })
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(
    `median ratios to plain INSERTs: in-process ${median(rows.map((r) => r.inProcess / r.plain)).toFixed(2)}, ` +
      `HTTP + plain INSERT ${median(rows.map((r) => r.bare / r.plain)).toFixed(2)}, ` +
      `HTTP on PostgreSQL ${median(rows.map((r) => r.http / r.plain)).toFixed(2)} (target >= 1.0); ` +
      `HTTP on PostgreSQL / HTTP + plain INSERT ${median(rows.map((r) => r.http / r.bare)).toFixed(2)}` +
      (rows[0]?.base ? `; this build / base ${median(rows.map((r) => r.http / r.base)).toFixed(2)}` : ''),
  )
}

async function main() {
  const own = process.env.DATABASE_URL ? undefined : await startPostgres()
  const url = process.env.DATABASE_URL ?? own.url
  if (process.env.BENCH_ONLY === 'start') {
    try {
      await startRounds(url, own?.pid)
    } finally {
      await own?.stop()
    }
    return
  }
  if (process.env.BENCH_ONLY === 'tree') {
    try {
      await treeOverhead(url)
    } finally {
      await own?.stop()
    }
    return
  }
  try {
    console.log(
      `PostgreSQL store bench: ${cpus().length} CPUs, ${SECONDS} s per run, ${CONNECTIONS} HTTP connections`,
    )
    const plain = await plainInserts(url, SECONDS, PLAIN_CONNECTIONS)
    const inProcess = await inProcessStarts(url, SECONDS, CONNECTIONS)
    const env = (schema) => ({
      CARE_STORE: 'postgres',
      DATABASE_URL: url,
      CARE_DB_SCHEMA: schema,
      CARE_IDLE_TIMEOUT: '30m',
    })

    // The same HTTP stack on the embedded JSONL store: the ceiling HTTP puts on this machine.
    const dataDir = mkdtempSync(join(tmpdir(), 'care-file-bench-'))
    const fileInstance = [await startInstance({ CARE_DATA_DIR: dataDir })]
    const file = await serviceRun(fileInstance, SECONDS)
    await Promise.all(fileInstance.map((i) => i.stop()))
    rmSync(dataDir, { recursive: true, force: true })

    const one = [await startInstance(env('care_bench_1'))]
    const single = await serviceRun(one, SECONDS)
    await Promise.all(one.map((i) => i.stop()))

    const two = await Promise.all([startInstance(env('care_bench_2')), startInstance(env('care_bench_2'))])
    const double = await serviceRun(two, SECONDS)
    await Promise.all(two.map((i) => i.stop()))

    const fmt = (n) => Math.round(n).toLocaleString('en-US')
    console.log('')
    console.log('| run | per second | p50 ms | p99 ms | non-2xx/errors |')
    console.log('|---|---:|---:|---:|---:|')
    console.log(
      `| plain single-row INSERT, pg, ${PLAIN_CONNECTIONS} connections | ${fmt(plain.rate)} | | | |`,
    )
    console.log(
      `| lifecycle start on PostgreSQL in-process, ${CONNECTIONS} callers (no HTTP) | ${fmt(inProcess.rate)} | | | |`,
    )
    console.log(
      `| POST /sessions.start, JSONL file store, 1 instance | ${fmt(file.rate)} | ${file.p50} | ${file.p99} | ${file.bad} |`,
    )
    console.log(
      `| POST /sessions.start, PostgreSQL, 1 instance | ${fmt(single.rate)} | ${single.p50} | ${single.p99} | ${single.bad} |`,
    )
    console.log(
      `| POST /sessions.start, PostgreSQL, 2 instances | ${fmt(double.rate)} | ${double.p50} | ${double.p99} | ${double.bad} |`,
    )
    console.log('')
    console.log(
      `ratio start(in-process, no HTTP) / plain INSERT: ${(inProcess.rate / plain.rate).toFixed(2)}`,
    )
    console.log(`ratio start(1 instance) / plain INSERT: ${(single.rate / plain.rate).toFixed(2)}`)
    console.log(`ratio start(2 instances) / plain INSERT: ${(double.rate / plain.rate).toFixed(2)}`)
    console.log(
      `ratio start(PostgreSQL, 1 instance) / start(JSONL file store): ${(single.rate / file.rate).toFixed(2)}`,
    )
    console.log(`ratio 2 instances / 1 instance: ${(double.rate / single.rate).toFixed(2)}`)
    await treeOverhead(url)
  } finally {
    await own?.stop()
  }
}

if (process.env.BENCH_INSERT_SERVER) await insertServer(process.env.BENCH_INSERT_SERVER)
else await main()
