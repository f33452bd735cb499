#!/usr/bin/env node
// Proof generation on a flat-file tree: `node bench/proofs.mjs [--leaves 10000000]` after a build.
// Builds the tree (random leaf hashes, so only interior hashing is timed), then times inclusion and
// consistency proofs for random leaves/sizes, reading every hash from the level files (no cache).
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FileNodeStore, MerkleTree, verifyConsistency, verifyInclusion } from '../dist/index.js'

const { values } = parseArgs({ options: { leaves: { type: 'string', default: '10000000' } } })
const n = Number(values.leaves)
const dir = mkdtempSync(join(tmpdir(), 'tlog-bench-'))
try {
  const store = FileNodeStore.open(dir)
  const tree = new MerkleTree(store)
  const pool = randomBytes(32 * 4096)
  let t = performance.now()
  for (let i = 0; i < n; i++) tree.appendLeafHash(pool.subarray((i % 4096) * 32, (i % 4096) * 32 + 32))
  store.flush()
  const buildS = (performance.now() - t) / 1000
  const root = tree.root()
  const timings = { inclusion: [], consistency: [] }
  for (let i = 0; i < 2000; i++) {
    const index = randomInt(0, n)
    t = performance.now()
    const proof = tree.inclusionProof(index, n)
    timings.inclusion.push(performance.now() - t)
    verifyInclusion(index, n, tree.leafHash(index), proof, root)
    const from = randomInt(1, n)
    t = performance.now()
    const c = tree.consistencyProof(from, n)
    timings.consistency.push(performance.now() - t)
    if (i < 20) verifyConsistency(from, n, c, tree.root(from), root)
  }
  const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]
  const ms = (x) => Math.round(x * 1000) / 1000
  console.log(
    JSON.stringify(
      {
        leaves: n,
        build_s: Math.round(buildS * 10) / 10,
        appends_per_s: Math.round(n / buildS),
        inclusion_ms: {
          p50: ms(pct(timings.inclusion, 0.5)),
          p99: ms(pct(timings.inclusion, 0.99)),
          max: ms(Math.max(...timings.inclusion)),
        },
        consistency_ms: {
          p50: ms(pct(timings.consistency, 0.5)),
          p99: ms(pct(timings.consistency, 0.99)),
          max: ms(Math.max(...timings.consistency)),
        },
        goal: 'inclusion proof for any record of a 10M-record log < 5 ms',
      },
      null,
      2,
    ),
  )
  store.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
