import { ULID_PATTERN } from '@care/schemas'
import { afterEach, describe, expect, it } from 'vitest'
import { type AuditSource, logAuditSource } from './audit-source.js'
import { type ExportManifest, runExport } from './export.js'
import { type ExportFilters, parseExportFilters, SESSION_ID_PATTERN } from './export-filters.js'
import { createPseudonymizer } from './pseudonymize.js'
import { scenario, tempDirs, writeLog } from './test-support/audit-fixtures.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

async function scenarioDir(maxFileBytes?: number): Promise<string> {
  const dir = await dirs.make()
  await writeLog(dir, scenario(), maxFileBytes)
  return dir
}

async function exportOf(
  source: AuditSource,
  filters: ExportFilters,
  options: Parameters<typeof runExport>[3] = {},
): Promise<{ lines: Record<string, unknown>[]; text: string; manifest: ExportManifest }> {
  let text = ''
  const manifest = await runExport(
    source,
    filters,
    (chunk) => {
      text += Buffer.from(chunk).toString('utf8')
    },
    options,
  )
  const lines =
    text === ''
      ? []
      : text
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>)
  return { lines, text, manifest }
}

/** The scan-only view of the same log: forces the re-scan path of `runExport`. */
function scanOnly(dir: string): AuditSource {
  const positioned = logAuditSource(dir)
  return { scan: () => positioned.scan() }
}

// Hand-computed from scenario(): seq = position in the list (1-based).
const CASES: { name: string; filters: ExportFilters; seqs: number[] }[] = [
  {
    name: 'no filter: every session, in start order, contiguous',
    filters: {},
    seqs: [1, 3, 7, 9, 2, 5, 10, 4, 12, 6, 8, 11],
  },
  {
    name: 'user_id selects the sessions that user started',
    filters: { user_id: 'user-a' },
    seqs: [1, 3, 7, 9, 4, 12],
  },
  {
    name: 'reason selects sessions by how they ended',
    filters: { reason: 'idle_timeout' },
    seqs: [2, 5, 10],
  },
  {
    name: 'from/to keep events with from <= timestamp < to',
    filters: { from: '2026-03-01T12:00:20.000Z', to: '2026-03-01T12:00:50.000Z' },
    seqs: [7, 9, 5, 6, 8],
  },
  {
    name: 'user_id and from combine',
    filters: { user_id: 'user-b', from: '2026-03-01T12:00:20Z' },
    seqs: [5, 10, 6, 8, 11],
  },
  {
    name: 'reason and to combine',
    filters: { reason: 'explicit', to: '2026-03-01T12:00:10.000Z' },
    seqs: [1],
  },
  {
    name: 'session_id selects one session',
    filters: { session_id: '01JS0000000000000000000003' },
    seqs: [4, 12],
  },
  { name: 'a filter nothing matches gives an empty export', filters: { user_id: 'nobody' }, seqs: [] },
]

describe('runExport', () => {
  for (const { name, filters, seqs } of CASES) {
    it(`${name} (log with positions)`, async () => {
      const dir = await scenarioDir()
      const { lines, manifest } = await exportOf(logAuditSource(dir), filters)
      expect(lines.map((l) => l.seq)).toEqual(seqs)
      expect(manifest.counts.events).toBe(seqs.length)
      expect(manifest.counts.scanned).toBe(12)
    })
    it(`${name} (scan-only source, one event per window)`, async () => {
      const dir = await scenarioDir()
      const { lines } = await exportOf(scanOnly(dir), filters, { windowEvents: 1 })
      expect(lines.map((l) => l.seq)).toEqual(seqs)
    })
  }

  it('writes the log lines byte for byte, so every exported line still verifies against its hash', async () => {
    const dir = await scenarioDir(1024)
    const { readFile, readdir } = await import('node:fs/promises')
    const files = (await readdir(`${dir}/events`)).sort()
    expect(files.length).toBeGreaterThan(1)
    const logLines = new Set<string>()
    for (const file of files) {
      for (const line of (await readFile(`${dir}/events/${file}`, 'utf8')).split('\n'))
        if (line) logLines.add(line)
    }
    const { text } = await exportOf(logAuditSource(dir), {})
    for (const line of text.trimEnd().split('\n')) expect(logLines.has(line)).toBe(true)
  })

  it('gives the same records from a positioned source and a scan-only source', async () => {
    const dir = await scenarioDir(2048)
    const a = await exportOf(logAuditSource(dir), {})
    const b = await exportOf(scanOnly(dir), {}, { windowEvents: 3 })
    expect(b.lines).toEqual(a.lines)
  })

  it('fills the manifest: filters, counts, first and last record, chain head and output digest', async () => {
    const dir = await scenarioDir()
    const { text, lines, manifest } = await exportOf(
      logAuditSource(dir),
      { user_id: 'user-a' },
      { now: () => new Date('2026-03-02T00:00:00.000Z') },
    )
    const all = await exportOf(logAuditSource(dir), {})
    const last = all.lines.find((l) => l.seq === 12)!
    const { createHash } = await import('node:crypto')
    expect(manifest).toMatchObject({
      kind: 'care.session-export',
      created_at: '2026-03-02T00:00:00.000Z',
      filters: { user_id: 'user-a' },
      pseudonymized: null,
      counts: {
        sessions: 2,
        events: 6,
        scanned: 12,
        by_event: { 'session.start': 2, 'session.touch': 2, 'session.end': 2 },
      },
      first_record: { seq: 1, hash: lines[0]!.hash, record_id: lines[0]!.record_id },
      last_record: { seq: 12, hash: last.hash },
      source_head: { seq: 12, hash: last.hash },
      output: { bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') },
    })
  })

  it('reports an empty log with the genesis head', async () => {
    const dir = await dirs.make()
    await writeLog(dir, [])
    const { manifest, text } = await exportOf(logAuditSource(dir), {})
    expect(text).toBe('')
    expect(manifest.source_head).toEqual({ seq: 0, hash: '0'.repeat(64) })
    expect(manifest.first_record).toBeNull()
  })
})

describe('pseudonymised export', () => {
  const key = Buffer.from('a-test-key-of-32-bytes-0123456789')

  it('replaces user_id and performer_id by stable keyed hashes and leaves no raw id behind', async () => {
    const dir = await scenarioDir()
    const { text, lines, manifest } = await exportOf(
      logAuditSource(dir),
      {},
      { pseudonymizer: createPseudonymizer(key) },
    )
    expect(text).not.toMatch(/user-a|user-b|caregiver-7/)
    for (const line of lines) {
      expect(line.user_id).toMatch(/^pseud:[0-9a-f]{64}$/)
      if (line.performer_id !== undefined) expect(line.performer_id).toMatch(/^pseud:[0-9a-f]{64}$/)
    }
    // Stable: the same user maps to the same pseudonym across sessions and runs.
    const again = await exportOf(logAuditSource(dir), {}, { pseudonymizer: createPseudonymizer(key) })
    expect(again.lines).toEqual(lines)
    const userOf = (seq: number) => lines.find((l) => l.seq === seq)!.user_id
    expect(userOf(1)).toBe(userOf(4)) // both user-a
    expect(userOf(1)).not.toBe(userOf(2)) // user-a vs user-b
    expect(manifest.pseudonymized).toMatchObject({
      algorithm: 'HMAC-SHA256',
      prefix: 'pseud:',
      key_id: createPseudonymizer(key).keyId,
    })
  })

  it('gives different pseudonyms under a different key', async () => {
    const a = createPseudonymizer(key)
    const b = createPseudonymizer(Buffer.from('another-key-of-enough-length-xyz'))
    expect(a.pseudonym('user-a')).not.toBe(b.pseudonym('user-a'))
    expect(a.pseudonym('user-a')).toBe(createPseudonymizer(key).pseudonym('user-a'))
  })

  it('refuses a key shorter than 16 bytes', () => {
    expect(() => createPseudonymizer(Buffer.from('short'))).toThrow(RangeError)
  })
})

describe('parseExportFilters', () => {
  it('checks session ids with the same pattern as @care/schemas', () => {
    expect(SESSION_ID_PATTERN).toBe(ULID_PATTERN)
  })

  it('accepts ISO dates, a ULID session id and a known reason', () => {
    expect(
      parseExportFilters({
        from: '2026-03-01',
        to: '2026-03-02T00:00:00.000Z',
        session_id: '01JS0000000000000000000003',
        reason: 'explicit',
      }),
    ).toEqual({
      ok: true,
      value: {
        from: '2026-03-01',
        to: '2026-03-02T00:00:00.000Z',
        session_id: '01JS0000000000000000000003',
        reason: 'explicit',
      },
    })
  })

  it('rejects a bad date, a from after to, a bad session id and an unknown reason, naming each field', () => {
    const bad = parseExportFilters({ from: 'yesterday', session_id: 'abc', reason: 'crashed' })
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.fields.map((f) => f.path)).toEqual(['/from', '/session_id', '/reason'])
    const reversed = parseExportFilters({ from: '2026-03-02', to: '2026-03-01' })
    expect(reversed.ok).toBe(false)
    if (!reversed.ok) expect(reversed.fields.map((f) => f.path)).toEqual(['/to'])
  })
})
