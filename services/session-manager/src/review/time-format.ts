/** Time zones offered to reviewers (every IANA zone the runtime knows, UTC first). */
export const TIME_ZONES: readonly string[] = [
  'UTC',
  ...Intl.supportedValuesOf('timeZone').filter((zone) => zone !== 'UTC'),
]

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatterOf(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone)
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      fractionalSecondDigits: 3,
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
    formatters.set(zone, formatter)
  }
  return formatter
}

/**
 * A zone name the reviewer may choose: a known IANA zone, else UTC.
 *
 * @example
 * knownZone('Europe/Berlin') // 'Europe/Berlin'; knownZone('<script>') // 'UTC'
 */
export function knownZone(zone: string | undefined): string {
  return zone !== undefined && TIME_ZONES.includes(zone) ? zone : 'UTC'
}

const OFFSET_BUCKET_MS = 15 * 60_000
const MAX_CACHED_OFFSETS = 10_000
/** Zone offset and abbreviation per zone and quarter hour (zones change offset only on such boundaries). */
const offsets = new Map<string, { offsetMs: number; name: string }>()

function offsetOf(ms: number, zone: string): { offsetMs: number; name: string } {
  const bucket = Math.floor(ms / OFFSET_BUCKET_MS) * OFFSET_BUCKET_MS
  const key = `${zone} ${bucket}`
  let found = offsets.get(key)
  if (!found) {
    const parts = Object.fromEntries(
      formatterOf(zone)
        .formatToParts(bucket)
        .map((p) => [p.type, p.value]),
    )
    const local = Date.UTC(
      Number(parts.year),
      Number(parts.month) - 1,
      Number(parts.day),
      Number(parts.hour),
      Number(parts.minute),
      Number(parts.second),
    )
    found = { offsetMs: local - bucket, name: parts.timeZoneName ?? zone }
    if (offsets.size >= MAX_CACHED_OFFSETS) offsets.clear()
    offsets.set(key, found)
  }
  return found
}

/**
 * An instant as the reviewer reads it: `2026-03-01 13:00:00.123 CET` in `zone`.
 *
 * @example
 * formatInstant(Date.parse('2026-03-01T12:00:00.123Z'), 'UTC') // '2026-03-01 12:00:00.123 UTC'
 */
export function formatInstant(ms: number, zone: string): string {
  if (!Number.isFinite(ms)) return 'unknown time'
  // One Intl call per zone and quarter hour, not per entry: a 1,000-entry page formats 1,000 times.
  const { offsetMs, name } = zone === 'UTC' ? { offsetMs: 0, name: 'UTC' } : offsetOf(ms, zone)
  return `${new Date(ms + offsetMs).toISOString().slice(0, 23).replace('T', ' ')} ${name}`
}

/**
 * A duration for people: `2 h 05 min 03 s`, `4.250 s`.
 *
 * @example
 * formatDuration(7_503_000) // '2 h 05 min 03 s'
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'unknown'
  if (ms < 60_000) return `${(ms / 1000).toFixed(3)} s`
  const s = Math.floor(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min ${rest} s` : `${m} min ${rest} s`
}
