// The active segment's index, encoded at once (`MemoryIndex.encode`) and in slices
// (`encodeInSlices`, what `persistActiveIndex` uses at each snapshot): wall time and the longest
// event-loop stall while it runs. The index is shaped like a full 64 MiB segment of the
// session-manager's log: N records of ~640 bytes, each under its own record key, half of them
// starting a session (session and user keys) and every start under one shared key.
//
//   pnpm --filter @care/event-log build && node packages/event-log/bench/index-encode.mjs [records=100000] [rounds=3]
//   BENCH_BASE=/other/checkout/packages/event-log/dist node …   # also that build's encode(), same run
import { randomBytes } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { MemoryIndex } from '../dist/segment-index.js'

const records = Number(process.argv[2] ?? 100_000)
const rounds = Number(process.argv[3] ?? 3)
const Base = process.env.BENCH_BASE
  ? (await import(`${process.env.BENCH_BASE}/segment-index.js`)).MemoryIndex
  : undefined
const id = () => randomBytes(16).toString('base64url').slice(0, 26).toUpperCase()

function build(Index) {
  const index = new Index()
  let session = ''
  for (let i = 0; i < records; i++) {
    const keys = [`r:${id()}`]
    if (i % 2 === 0) {
      session = id()
      keys.push(`s:${session}`, `u:user-${i % 5_000}`, 'start')
    } else keys.push(`s:${session}`)
    index.add(keys, { offset: i * 641, length: 640 }, Date.now())
  }
  index.lines = records
  index.lastSeq = records
  index.lastHash = '0'.repeat(64)
  return index
}

const segment = { name: 'events-000001.jsonl', index: 1, path: '' }
const state = { bytes: records * 641, lines: records, lastSeq: records, lastHash: '0'.repeat(64) }
const index = build(MemoryIndex)
const base = Base ? build(Base) : undefined

async function timed(label, encode, sliced = false) {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const started = performance.now()
  const bytes = await encode()
  const ms = performance.now() - started
  await new Promise((resolve) => setImmediate(resolve))
  delay.disable()
  const stall = sliced ? `longest stall ${(delay.max / 1e6).toFixed(1)} ms` : 'one stall as long'
  console.log(`${label}: ${ms.toFixed(0)} ms, ${stall}, ${bytes.length} bytes`)
}

for (let round = 0; round < rounds; round++) {
  if (base) await timed('base encode()     ', () => base.encode(segment, state))
  await timed('encode()          ', () => index.encode(segment, state))
  await timed('encodeInSlices()  ', () => index.encodeInSlices(segment, state), true)
}
