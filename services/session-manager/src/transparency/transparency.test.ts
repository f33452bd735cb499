import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { canonicalJson } from '@care/event-log'
import { parseSignerKey, parseVerifierKey, signCheckpoint } from '@care/tlog'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import {
  independentLeafHash,
  independentOpenCheckpoint,
  independentVerifyConsistency,
  independentVerifyInclusion,
} from '../../../../packages/tlog/src/test-support/independent-verifier.js'
import { captureIo } from '../audit/test-support/audit-fixtures.js'
import { verifyDataDir } from '../audit/verify.js'
import { main } from '../cli/cli.js'
import { loadConfig } from '../config.js'
import { type RunningSessionManager, startSessionManager } from '../server.js'
import { postJson, requestBody } from '../test-support/records.js'
import { type ProvenExport, verifyProvenExport } from './proven-export.js'
import { type NoteKeys, noteKeys } from './test-support/note-keys.js'
import { checkpointFileName, listCheckpointFiles } from './transparency-log.js'

const ORIGIN = 'care.example/sessions'
const dirs: string[] = []
const running: RunningSessionManager[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'care-tlog-'))
  dirs.push(dir)
  return dir
}

function keys(name = ORIGIN): NoteKeys {
  return noteKeys(name)
}

type Keys = NoteKeys

async function start(
  dir: string,
  key: Keys,
  everyRecords = 4,
  env: Record<string, string> = {},
  publishUrl?: string,
): Promise<{ url: string; sm: RunningSessionManager }> {
  const config = loadConfig({ CARE_DATA_DIR: dir, PORT: '0', ...env }, [])
  const sm = await startSessionManager(config, {
    logger: pino({ level: 'silent' }),
    transparency: {
      signer: key.signer,
      verifier: key.verifier,
      everyRecords,
      intervalMs: 60_000,
      ...(publishUrl ? { publishUrl } : {}),
    },
  })
  running.push(sm)
  await sm.ready
  return { url: `http://127.0.0.1:${sm.port}`, sm }
}

async function stop(sm: RunningSessionManager): Promise<void> {
  running.splice(running.indexOf(sm), 1)
  await sm.stop()
}

/** Starts `n` sessions; returns their ids. */
async function startSessions(url: string, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await postJson(`${url}/sessions.start`, requestBody({ user_id: `user-${i}` }))
    expect(res?.status).toBe(201)
    ids.push(String(res!.body.session_id))
  }
  return ids
}

function logFile(dir: string): string {
  const name = readdirSync(join(dir, 'events'))
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .at(-1)!
  return join(dir, 'events', name)
}

function lines(dir: string): string[] {
  return readFileSync(logFile(dir), 'utf8').split('\n').slice(0, -1)
}

/** Rewrites the log with line `index` changed by `edit` and the hash chain recomputed from there on. */
function editAndRechain(dir: string, index: number, edit: (record: Record<string, unknown>) => void): void {
  const out: string[] = []
  let prev = ''
  for (const [i, line] of lines(dir).entries()) {
    const record = JSON.parse(line) as Record<string, unknown>
    if (i < index) {
      out.push(line)
      prev = String(record.hash)
      continue
    }
    if (i === index) edit(record)
    delete record.hash
    record.prev_hash = prev
    const canonical = canonicalJson(record)
    prev = createHash('sha256').update(canonical).digest('hex')
    out.push(`${canonical.slice(0, -1)},"hash":"${prev}"}`)
  }
  writeFileSync(logFile(dir), out.map((l) => `${l}\n`).join(''))
}

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = captureIo()
  const code = await main(argv, out.io)
  return { code, stdout: out.stdout, stderr: out.stderr }
}

async function waitForCheckpoint(url: string, size: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${url}/checkpoint`)
    if (res.status === 200) {
      const note = await res.text()
      if (note.split('\n')[1] === String(size)) return note
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`no checkpoint of size ${size}`)
}

describe('the service as a transparency log', { timeout: 30_000 }, () => {
  it('signs checkpoints every N records and serves proofs an independent verifier accepts', async () => {
    const dir = tempDir()
    const key = keys()
    const { url } = await start(dir, key)
    const sessions = await startSessions(url, 10)

    const note = await waitForCheckpoint(url, 8)
    const checkpoint = independentOpenCheckpoint(note, key.verifierKey)
    expect(checkpoint).toMatchObject({ origin: ORIGIN, size: 8 })
    expect(listCheckpointFiles(join(dir, 'checkpoints')).map((c) => c.size)).toEqual([4, 8])

    // Inclusion of record 3 (by default against the newest checkpoint), from the line bytes on disk.
    const inclusion = (await (await fetch(`${url}/proofs/inclusion?seq=3`)).json()) as Record<string, unknown>
    expect(inclusion).toMatchObject({ seq: 3, tree_size: 8, root_hash: checkpoint!.root.toString('base64') })
    const leaf = independentLeafHash(Buffer.from(lines(dir)[2]!))
    const proof = (inclusion.inclusion_proof as string[]).map((h) => Buffer.from(h, 'base64'))
    expect(independentVerifyInclusion(2, 8, leaf, proof, checkpoint!.root)).toBe(true)

    // Consistency between the two signed checkpoints.
    const first = independentOpenCheckpoint(
      readFileSync(join(dir, 'checkpoints', checkpointFileName(4)), 'utf8'),
      key.verifierKey,
    )!
    const consistency = (await (await fetch(`${url}/proofs/consistency?from=4&to=8`)).json()) as {
      consistency_proof: string[]
    }
    const path = consistency.consistency_proof.map((h) => Buffer.from(h, 'base64'))
    expect(independentVerifyConsistency(4, 8, path, first.root, checkpoint!.root)).toBe(true)

    // One session's export, checked offline with the public key only.
    const res = await fetch(`${url}/proofs/export?session_id=${sessions[5]}`)
    const doc = (await res.json()) as ProvenExport
    expect(doc.records.map((r) => r.seq)).toEqual([6])
    expect(verifyProvenExport(doc, [key.verifier])).toEqual({ origin: ORIGIN, size: 8, records: 1 })
    const r = doc.records[0]!
    expect(
      independentVerifyInclusion(
        r.seq - 1,
        8,
        independentLeafHash(Buffer.from(r.line)),
        r.inclusion_proof.map((h) => Buffer.from(h, 'base64')),
        checkpoint!.root,
      ),
    ).toBe(true)
  })

  it('also signs a checkpoint when the log seals a segment', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 1000, { CARE_LOG_MAX_FILE_BYTES: '4096' })
    await startSessions(url, 60)
    await stop(sm)
    const segments = readdirSync(join(dir, 'events'))
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
    expect(segments.length).toBeGreaterThan(1)
    const sealedSizes = segments.slice(0, -1).reduce<number[]>((sizes, name) => {
      const count = readFileSync(join(dir, 'events', name), 'utf8').split('\n').length - 1
      sizes.push((sizes.at(-1) ?? 0) + count)
      return sizes
    }, [])
    expect(listCheckpointFiles(join(dir, 'checkpoints')).map((c) => c.size)).toEqual([...sealedSizes, 60])
    expect((await cli('verify', dir, '--public-key', key.verifierKey)).code).toBe(0)
  })

  it('POSTs new checkpoints to the configured URL, retrying failures without holding up appends', async () => {
    const received: string[] = []
    let refuse = 1
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => (body += chunk))
      req.on('end', () => {
        if (refuse-- > 0) {
          res.writeHead(503).end()
          return
        }
        received.push(body)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as { port: number }).port
      const dir = tempDir()
      const key = keys()
      const { url, sm } = await start(dir, key, 4, {}, `http://127.0.0.1:${port}/checkpoints`)
      await startSessions(url, 4) // the first POST is refused
      const note = await waitForCheckpoint(url, 4)
      for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
      expect(received).toEqual([note])
      expect(independentOpenCheckpoint(received[0]!, key.verifierKey)?.size).toBe(4)
      await stop(sm)

      // A witness that is down does not slow or fail appends.
      const down = await start(tempDir(), key, 1, {}, 'http://127.0.0.1:9/unreachable')
      await startSessions(down.url, 3)
      await waitForCheckpoint(down.url, 3)
    } finally {
      server.close()
    }
  })

  it('answers bad proof queries with 400 in the shared error shape', async () => {
    const dir = tempDir()
    const { url } = await start(dir, keys())
    await startSessions(url, 4)
    await waitForCheckpoint(url, 4)
    for (const query of [
      'inclusion?seq=0',
      'inclusion?seq=5',
      'inclusion?seq=x',
      'inclusion?seq=1&size=99',
      'consistency?from=0&to=4',
      'consistency?from=3&to=2',
      'consistency?from=1&to=5',
    ]) {
      const res = await fetch(`${url}/proofs/${query}`)
      expect(res.status, query).toBe(400)
      expect(await res.json()).toMatchObject({ error: 'validation_failed' })
    }
    expect((await fetch(`${url}/proofs/export?session_id=nope`)).status).toBe(400)
    for (const query of ['', '?session_id=']) {
      const missing = await fetch(`${url}/proofs/export${query}`)
      expect([missing.status, ((await missing.json()) as { error: string }).error]).toEqual([
        400,
        'session_id_missing',
      ])
    }
  })

  it('writes a final checkpoint at shutdown and resumes the tree after a restart', async () => {
    const dir = tempDir()
    const key = keys()
    const first = await start(dir, key)
    await startSessions(first.url, 6)
    await stop(first.sm)
    expect(listCheckpointFiles(join(dir, 'checkpoints')).map((c) => c.size)).toEqual([4, 6])

    const second = await start(dir, key)
    await startSessions(second.url, 3)
    await stop(second.sm)
    expect(listCheckpointFiles(join(dir, 'checkpoints')).map((c) => c.size)).toEqual([4, 6, 9])

    const verified = await cli('verify', dir, '--public-key', key.verifierKey)
    expect(verified.stderr).toBe('')
    expect(verified.code).toBe(0)
    expect(verified.stdout).toMatch(
      /^OK: 9 record\(s\); hash chain ok; 3\/3 checkpoint\(s\) verified; newest verified checkpoint: size 9/,
    )
  })

  it('cleans up after a crash while a checkpoint was being written, and the log still verifies', async () => {
    const dir = tempDir()
    const key = keys()
    const first = await start(dir, key)
    await startSessions(first.url, 5)
    await stop(first.sm)
    const torn = join(dir, 'checkpoints', `${checkpointFileName(7)}.tmp-123-456`)
    writeFileSync(torn, 'care.example/sessions\n7\n')
    rmSync(join(dir, 'tree'), { recursive: true })
    const second = await start(dir, key)
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual([checkpointFileName(4), checkpointFileName(5)])
    await startSessions(second.url, 2)
    await stop(second.sm)
    expect((await cli('verify', dir, '--public-key', key.verifierKey)).code).toBe(0)
  })

  it('rebuilds deleted or damaged tree files from the log', async () => {
    const dir = tempDir()
    const key = keys()
    const first = await start(dir, key)
    await startSessions(first.url, 5)
    await stop(first.sm)
    writeFileSync(join(dir, 'tree', 'level-00.hashes'), Buffer.alloc(5 * 32, 1))
    const second = await start(dir, key)
    const note = await waitForCheckpoint(second.url, 5)
    const inclusion = (await (await fetch(`${second.url}/proofs/inclusion?seq=2&size=5`)).json()) as {
      inclusion_proof: string[]
    }
    const proof = inclusion.inclusion_proof.map((h) => Buffer.from(h, 'base64'))
    const root = independentOpenCheckpoint(note, key.verifierKey)!.root
    expect(
      independentVerifyInclusion(1, 5, independentLeafHash(Buffer.from(lines(dir)[1]!)), proof, root),
    ).toBe(true)
  })
})

describe('tamper detection with signed checkpoints', { timeout: 30_000 }, () => {
  async function signedLog(records: number): Promise<{ dir: string; key: Keys }> {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 5)
    await startSessions(url, records)
    await stop(sm)
    return { dir, key }
  }

  it('detects an edited line even when the hash chain was recomputed', async () => {
    const { dir, key } = await signedLog(10)
    editAndRechain(dir, 3, (record) => {
      record.user_id = 'someone-else'
    })
    expect((await verifyDataDir(dir)).ok).toBe(true) // the chain alone is fooled
    const result = await cli('verify', dir, '--public-key', key.verifierKey)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/Merkle root at size 5 differs from the signed root/)
    expect(result.stderr).toMatch(/Merkle root at size 10 differs/)
  })

  it('detects a tail cut at a line boundary', async () => {
    const { dir, key } = await signedLog(10)
    const kept = lines(dir).slice(0, 7)
    writeFileSync(logFile(dir), kept.map((l) => `${l}\n`).join(''))
    expect((await verifyDataDir(dir)).ok).toBe(true)
    const result = await cli('verify', dir, '--public-key', key.verifierKey)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/signed 10 records but the log has 7/)
  })

  it('detects a log rolled back to an older copy when checkpoints are kept elsewhere', async () => {
    const dir = tempDir()
    const key = keys()
    const archive = tempDir()
    const first = await start(dir, key, 5)
    await startSessions(first.url, 5)
    await stop(first.sm)
    const backup = tempDir()
    cpSync(join(dir, 'events'), join(backup, 'events'), { recursive: true })
    const second = await start(dir, key, 5)
    await startSessions(second.url, 5)
    await stop(second.sm)
    cpSync(join(dir, 'checkpoints'), archive, { recursive: true })
    // The host restores the older copy and deletes the newer checkpoints it holds.
    rmSync(join(dir, 'events'), { recursive: true })
    cpSync(join(backup, 'events'), join(dir, 'events'), { recursive: true })
    rmSync(join(dir, 'checkpoints', checkpointFileName(10)))
    expect((await cli('verify', dir, '--public-key', key.verifierKey)).code).toBe(0)
    const result = await cli('verify', dir, '--public-key', key.verifierKey, '--checkpoints', archive)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/signed 10 records but the log has 5/)
  })

  it('stops signing when the log no longer matches a checkpoint it signed', async () => {
    const { dir, key } = await signedLog(10)
    editAndRechain(dir, 1, (record) => {
      record.user_id = 'someone-else'
    })
    const { url, sm } = await start(dir, key, 5)
    await startSessions(url, 5)
    await stop(sm)
    expect(listCheckpointFiles(join(dir, 'checkpoints')).map((c) => c.size)).toEqual([5, 10])
  })

  it('refuses a checkpoint signed by an unknown key, and accepts a rotated key when configured', async () => {
    const { dir, key } = await signedLog(5)
    const intruder = keys()
    const root = Buffer.alloc(32, 9)
    writeFileSync(
      join(dir, 'checkpoints', checkpointFileName(6)),
      signCheckpoint({ origin: ORIGIN, size: 6, rootHash: root }, [intruder.signer]),
    )
    const result = await cli('verify', dir, '--public-key', key.verifierKey)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/00000000000000000006\.checkpoint: note has no verifiable signatures/)

    // Rotation: the new key re-signs the current root; both keys are configured for verification.
    rmSync(join(dir, 'checkpoints', checkpointFileName(6)))
    const rotated = keys()
    const current = readFileSync(join(dir, 'checkpoints', checkpointFileName(5)), 'utf8')
    const body = current.slice(0, current.lastIndexOf('\n\n') + 1)
    const [origin, size, rootB64] = body.split('\n')
    writeFileSync(
      join(dir, 'checkpoints', checkpointFileName(5)),
      signCheckpoint({ origin: origin!, size: Number(size), rootHash: Buffer.from(rootB64!, 'base64') }, [
        rotated.signer,
      ]),
    )
    const vkeys = join(dir, 'keys.vkey')
    writeFileSync(vkeys, `${key.verifierKey}\n${rotated.verifierKey}\n`)
    expect((await cli('verify', dir, '--public-key', vkeys)).code).toBe(0)
  })

  it('verify-export accepts a genuine export and rejects forged proofs, edited records and unknown keys', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 4)
    const sessions = await startSessions(url, 8)
    await waitForCheckpoint(url, 8)
    const doc = (await (await fetch(`${url}/proofs/export?session_id=${sessions[2]}`)).json()) as ProvenExport
    await stop(sm)
    const write = (d: unknown) => {
      const file = join(dir, `export-${Math.random()}.json`)
      writeFileSync(file, JSON.stringify(d))
      return file
    }
    const ok = await cli('verify-export', '--public-key', key.verifierKey, write(doc))
    expect(ok.stdout).toMatch(/^OK: 1 record\(s\) included in care.example\/sessions at tree size 8/)
    expect(ok.code).toBe(0)

    const forgedProof = structuredClone(doc)
    const hash = Buffer.from(forgedProof.records[0]!.inclusion_proof[1]!, 'base64')
    hash[0]! ^= 1
    forgedProof.records[0]!.inclusion_proof[1] = hash.toString('base64')
    const edited = structuredClone(doc)
    edited.records[0]!.line = edited.records[0]!.line.replace('"user-2"', '"user-9"')
    const shortened = structuredClone(doc)
    shortened.records[0]!.inclusion_proof.pop()
    const moved = structuredClone(doc)
    moved.records[0]!.seq = 4
    for (const [name, forged] of Object.entries({ forgedProof, edited, shortened, moved })) {
      const result = await cli('verify-export', '--public-key', key.verifierKey, write(forged))
      expect(result.code, name).toBe(1)
      expect(result.stderr, name).toMatch(/FAILED/)
    }
    const stranger = await cli('verify-export', '--public-key', keys().verifierKey, write(doc))
    expect(stranger.code).toBe(1)
    expect(stranger.stderr).toMatch(/checkpoint: note has no verifiable signatures/)
  })

  it('keygen writes a signer key readable by its owner only and the matching verifier key', async () => {
    const dir = tempDir()
    const prefix = join(dir, 'log')
    const result = await cli('keygen', '--name', ORIGIN, '--out', prefix)
    expect(result.code).toBe(0)
    const skey = readFileSync(`${prefix}.skey`, 'utf8').trim()
    const vkey = readFileSync(`${prefix}.vkey`, 'utf8').trim()
    expect(parseSignerKey(skey).keyId).toBe(parseVerifierKey(vkey).keyId)
    const { statSync } = await import('node:fs')
    expect(statSync(`${prefix}.skey`).mode & 0o777).toBe(0o600)
  })

  it('verify --public-key before any checkpoint exists fails saying no checkpoint has been written yet', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key)
    await startSessions(url, 2)
    await stop(sm)
    const empty = join(tempDir(), 'checkpoints')
    mkdirSync(empty)
    const result = await cli('verify', dir, '--public-key', key.verifierKey, '--checkpoints', empty)
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAILED: \d+ record\(s\); hash chain ok; no checkpoint written yet\n$/)
    expect(result.stderr).toContain(`no checkpoint has been written yet in ${empty}`)
    expect(result.stderr).toContain('CARE_CHECKPOINT_KEY_FILE')
  })

  it('keygen refuses an existing key file with a clear message and exit 2, and replaces both with --force', async () => {
    const dir = tempDir()
    const prefix = join(dir, 'log')
    expect((await cli('keygen', '--name', ORIGIN, '--out', prefix)).code).toBe(0)
    const first = readFileSync(`${prefix}.vkey`, 'utf8')
    const again = await cli('keygen', '--name', ORIGIN, '--out', prefix)
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`key file ${prefix}.skey exists; remove it or pass --force`)
    expect(again.stderr).not.toContain('EEXIST')
    expect(readFileSync(`${prefix}.vkey`, 'utf8')).toBe(first)
    const forced = await cli('keygen', '--name', ORIGIN, '--out', prefix, '--force')
    expect(forced.code).toBe(0)
    const skey = readFileSync(`${prefix}.skey`, 'utf8').trim()
    const vkey = readFileSync(`${prefix}.vkey`, 'utf8')
    expect(vkey).not.toBe(first)
    expect(parseSignerKey(skey).keyId).toBe(parseVerifierKey(vkey.trim()).keyId)
    const { statSync } = await import('node:fs')
    expect(statSync(`${prefix}.skey`).mode & 0o777).toBe(0o600)
  })
})

describe('transparency settings', () => {
  it('reads the key file and cadence from the environment and refuses bad values as configuration errors', async () => {
    const { loadTransparencySettings } = await import('./config.js')
    const { ConfigError } = await import('../config.js')
    const dir = tempDir()
    const key = keys()
    writeFileSync(join(dir, 'log.skey'), `${key.signerKey}\n`)
    const settings = loadTransparencySettings({
      CARE_CHECKPOINT_KEY_FILE: join(dir, 'log.skey'),
      CARE_CHECKPOINT_EVERY: '50',
      CARE_CHECKPOINT_INTERVAL_MS: '2000',
    })
    expect(settings).toMatchObject({ everyRecords: 50, intervalMs: 2000 })
    expect(settings.signer?.keyId).toBe(key.verifier.keyId)
    expect(loadTransparencySettings({}).signer).toBeUndefined()
    expect(loadTransparencySettings({ CARE_TRANSPARENCY: 'off' }).enabled).toBe(false)
    for (const env of [
      { CARE_CHECKPOINT_KEY_FILE: join(dir, 'missing.skey') },
      { CARE_CHECKPOINT_KEY_FILE: join(dir, 'log.skey'), CARE_CHECKPOINT_EVERY: '0' },
      { CARE_TRANSPARENCY: 'maybe' },
    ]) {
      expect(() => loadTransparencySettings(env)).toThrow(ConfigError)
    }
    writeFileSync(join(dir, 'bad.skey'), key.verifierKey)
    expect(() => loadTransparencySettings({ CARE_CHECKPOINT_KEY_FILE: join(dir, 'bad.skey') })).toThrow(
      ConfigError,
    )
  })
})

describe('exports carry inclusion proofs against a named signed checkpoint', { timeout: 30_000 }, () => {
  const save = (dir: string, text: string, name = `export-${Math.random()}.jsonl`) => {
    const file = join(dir, name)
    writeFileSync(file, text)
    return file
  }
  const verifyExport = (key: Keys, ...argv: string[]) =>
    cli('verify-export', '--public-key', key.verifierKey, ...argv)
  const flipProofByte = (line: string) => {
    const value = JSON.parse(line) as { inclusion_proof: { hashes: string[] } }
    const hash = Buffer.from(value.inclusion_proof.hashes[0]!, 'base64')
    hash[0]! ^= 1
    value.inclusion_proof.hashes[0] = hash.toString('base64')
    return JSON.stringify(value)
  }

  it('GET /export signs a checkpoint covering its snapshot and verifies offline; edits and forged proofs fail', async () => {
    const dir = tempDir()
    const key = keys()
    // No checkpoint by count: the export itself has to sign one that covers its records.
    const { url, sm } = await start(dir, key, 1000)
    await startSessions(url, 6)
    const res = await fetch(`${url}/export`)
    expect(res.status).toBe(200)
    const body = await res.text()
    const bodyLines = body.split('\n').slice(0, -1)
    expect(bodyLines).toHaveLength(6 + 6 + 1)
    // Record lines first, unchanged (the log lines byte for byte), then one proof line per record.
    expect(bodyLines.slice(0, 6)).toEqual(lines(dir).slice(0, 6))
    expect(bodyLines.slice(6, 12).every((l) => 'inclusion_proof' in JSON.parse(l))).toBe(true)
    const { manifest } = JSON.parse(bodyLines[12]!) as {
      manifest: { transparency: { checkpoint: string; tree_size: number; proofs: number; unproven: number } }
    }
    expect(manifest.transparency).toMatchObject({ tree_size: 6, proofs: 6, unproven: 0 })
    // An independent verifier (spec code only) accepts the named checkpoint and each proof.
    const checkpoint = independentOpenCheckpoint(manifest.transparency.checkpoint, key.verifierKey)!
    for (const [i, line] of bodyLines.slice(6, 12).entries()) {
      const { inclusion_proof: p } = JSON.parse(line) as {
        inclusion_proof: { seq: number; hashes: string[] }
      }
      const leaf = independentLeafHash(Buffer.from(bodyLines[i]!))
      const path = p.hashes.map((h) => Buffer.from(h, 'base64'))
      expect(independentVerifyInclusion(p.seq - 1, 6, leaf, path, checkpoint.root)).toBe(true)
    }
    const plain = await (await fetch(`${url}/export?proofs=false`)).text()
    expect(plain.split('\n')).toHaveLength(6 + 2)
    expect(plain).not.toContain('inclusion_proof')
    expect((await fetch(`${url}/export?proofs=maybe`)).status).toBe(400)
    await stop(sm)

    const ok = await verifyExport(key, save(dir, body))
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toMatch(/^OK: 6 record\(s\) included in care.example\/sessions at tree size 6/)
    expect(ok.code).toBe(0)

    const edited = [...bodyLines]
    edited[2] = edited[2]!.replace('"user-2"', '"user-9"')
    const forged = [...bodyLines]
    forged[8] = flipProofByte(forged[8]!)
    const dropped = bodyLines.filter((_, i) => i !== 3 && i !== 9)
    for (const [name, variant] of Object.entries({ edited, forged, dropped })) {
      const result = await verifyExport(key, save(dir, `${variant.join('\n')}\n`))
      expect(result.code, name).toBe(1)
      expect(result.stderr, name).toMatch(/FAILED/)
    }
    const stranger = await cli('verify-export', '--public-key', keys().verifierKey, save(dir, body))
    expect(stranger.code).toBe(1)
    expect(stranger.stderr).toMatch(/checkpoint: note has no verifiable signatures/)
    const unproven = await verifyExport(
      key,
      save(dir, `${[...bodyLines.slice(0, 6), bodyLines[12]].join('\n')}\n`),
    )
    expect(unproven.code).toBe(1)
    expect(unproven.stderr).toMatch(/6 record\(s\) have no inclusion proof/)
  })

  it('care-sessions export writes a proofs file against the newest checkpoint that verify-export checks', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 4)
    await startSessions(url, 6)
    await stop(sm) // the shutdown checkpoint covers all 6 records
    const out = join(dir, 'all.jsonl')
    const exported = await cli('export', '--data-dir', dir, '--out', out)
    expect(exported.code).toBe(0)
    expect(exported.stderr).toMatch(
      /inclusion proofs for 6 record\(s\) against the checkpoint at tree size 6/,
    )
    expect(readFileSync(out, 'utf8').split('\n').slice(0, -1)).toEqual(lines(dir))
    const ok = await verifyExport(key, out)
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^OK: 6 record\(s\) included/)

    // An edited dataset line (with its manifest recomputed to match) or a forged proof fails.
    const records = readFileSync(out, 'utf8').split('\n').slice(0, -1)
    const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as {
      output: { sha256: string; bytes: number }
    }
    const editedText = `${records.map((l, i) => (i === 1 ? l.replace('"user-1"', '"user-7"') : l)).join('\n')}\n`
    const editedFile = save(dir, editedText, 'edited.jsonl')
    manifest.output = {
      sha256: createHash('sha256').update(editedText).digest('hex'),
      bytes: Buffer.byteLength(editedText),
    }
    writeFileSync(`${editedFile}.manifest.json`, JSON.stringify(manifest))
    cpSync(`${out}.proofs.jsonl`, `${editedFile}.proofs.jsonl`)
    const edited = await verifyExport(key, editedFile)
    expect(edited.code).toBe(1)
    expect(edited.stderr).toMatch(/seq 2\): the line does not hash to the proven leaf/)

    const proofs = readFileSync(`${out}.proofs.jsonl`, 'utf8').split('\n').slice(0, -1)
    proofs[4] = flipProofByte(proofs[4]!)
    writeFileSync(`${out}.proofs.jsonl`, `${proofs.join('\n')}\n`)
    const forged = await verifyExport(key, out)
    expect(forged.code).toBe(1)
    expect(forged.stderr).toMatch(/seq 5\): inclusion proof leads to another root/)
  })

  it('records newer than the newest checkpoint get no proof, and verify-export says so', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 4)
    await startSessions(url, 6)
    await stop(sm)
    rmSync(join(dir, 'checkpoints', checkpointFileName(6)))
    const out = join(dir, 'all.jsonl')
    const exported = await cli('export', '--data-dir', dir, '--out', out)
    expect(exported.code).toBe(0)
    expect(exported.stderr).toMatch(/against the checkpoint at tree size 4.*2 record\(s\) are newer/)
    const result = await verifyExport(key, out)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(
      /2 record\(s\) have no inclusion proof \(newer than the checkpoint at size 4\)/,
    )
  })

  it('a pseudonymised export ships the original leaf hashes: proven, and an original line matches its hash', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 4)
    await startSessions(url, 5)
    await stop(sm)
    const keyFile = join(dir, 'pseud.key')
    writeFileSync(keyFile, 'a-pseudonymisation-key-of-32-bytes')
    const out = join(dir, 'pseud.jsonl')
    expect(
      (await cli('export', '--data-dir', dir, '--out', out, '--pseudonymize-key-file', keyFile)).code,
    ).toBe(0)
    expect(readFileSync(out, 'utf8')).toContain('pseud:')
    const ok = await verifyExport(key, out)
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/OK: 5 record\(s\).*pseudonymised/)
    // Revealing record 3's original line: its leaf hash is the one the export proved.
    const proof = JSON.parse(readFileSync(`${out}.proofs.jsonl`, 'utf8').split('\n')[2]!) as {
      inclusion_proof: { seq: number; leaf_hash: string }
    }
    expect(proof.inclusion_proof.seq).toBe(3)
    expect(independentLeafHash(Buffer.from(lines(dir)[2]!)).toString('base64')).toBe(
      proof.inclusion_proof.leaf_hash,
    )
    const proofs = readFileSync(`${out}.proofs.jsonl`, 'utf8').split('\n').slice(0, -1)
    proofs[1] = flipProofByte(proofs[1]!)
    writeFileSync(`${out}.proofs.jsonl`, `${proofs.join('\n')}\n`)
    expect((await verifyExport(key, out)).code).toBe(1)
  })

  it('care-sessions export refuses to write proofs from tree files that do not match the checkpoint', async () => {
    const dir = tempDir()
    const key = keys()
    const { url, sm } = await start(dir, key, 4)
    await startSessions(url, 4)
    await stop(sm)
    const level0 = join(dir, 'tree', 'level-00.hashes')
    const bytes = readFileSync(level0)
    bytes[40]! ^= 1
    writeFileSync(level0, bytes)
    const out = join(dir, 'all.jsonl')
    const result = await cli('export', '--data-dir', dir, '--out', out)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/tree files .* do not match it/)
    expect(readdirSync(dir).filter((f) => f.startsWith('all.jsonl'))).toEqual([])
  })
})
