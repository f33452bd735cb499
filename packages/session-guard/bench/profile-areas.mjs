// Splits a V8 .cpuprofile of a benchmark server into who spent the CPU: the guard's own frames
// (@care/session-guard and the @care/schemas parser it calls), the request observer
// (@care/observability, prom-client, bench/observer-middleware.mjs), the framework (every other
// package: hono, @hono/node-server, express, body-parser, ...), the benchmark's route handlers,
// Node itself, and the garbage collector. A builtin or `node:` frame counts for the nearest caller
// that has a package (JSON.parse called by the guard is the guard's; a socket write called by
// @hono/node-server is the framework's). Idle time is left out: shares are of busy CPU.
// `node bench/profile-areas.mjs <file.cpuprofile>` prints the split and the top functions of the guard and the observer.
import { readFileSync } from 'node:fs'

const AREAS = ['guard', 'observer', 'framework', 'app', 'node', 'gc', 'other']

function ownerOf(url) {
  if (!url || url.startsWith('node:')) return undefined
  if (
    /\/session-guard\/(dist|src)\//.test(url) ||
    url.includes('/schemas/dist/') ||
    url.includes('@care/schemas')
  )
    return 'guard'
  if (
    url.includes('/observability/dist/') ||
    url.includes('/prom-client/') ||
    url.endsWith('observer-middleware.mjs')
  )
    return 'observer'
  if (url.includes('/node_modules/')) return 'framework'
  if (url.endsWith('guard-overhead.mjs')) return 'app'
  return 'other'
}

/**
 * Busy-CPU shares by area, and the guard's and the observer's heaviest functions by the time attributed to them.
 *
 * @example
 * const { shares, text } = summarizeAreas(JSON.parse(readFileSync(file, 'utf8')))
 */
export function summarizeAreas(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const attributed = new Map() // node id -> [area, the owning frame's label]
  function attribute(id) {
    if (attributed.has(id)) return attributed.get(id)
    const node = byId.get(id)
    const f = node.callFrame
    let result
    if (f.functionName === '(garbage collector)') result = ['gc', 'gc']
    else if (f.functionName === '(idle)') result = ['idle', 'idle']
    else if (f.functionName === '(program)') result = ['other', '(program)']
    else {
      const owner = ownerOf(f.url)
      if (owner)
        result = [
          owner,
          `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`,
        ]
      else {
        const up = parent.get(id)
        result =
          up === undefined || byId.get(up).callFrame.functionName === '(root)'
            ? ['node', f.functionName]
            : attribute(up)
      }
    }
    attributed.set(id, result)
    return result
  }
  const time = new Map()
  const frames = { guard: new Map(), observer: new Map() }
  const dt = profile.timeDeltas
  for (let i = 0; i < profile.samples.length; i++) {
    const [area, label] = attribute(profile.samples[i])
    time.set(area, (time.get(area) ?? 0) + (dt[i] ?? 0))
    const fns = frames[area]
    if (fns) fns.set(label, (fns.get(label) ?? 0) + (dt[i] ?? 0))
  }
  const busy = [...time].filter(([a]) => a !== 'idle').reduce((sum, [, us]) => sum + us, 0)
  const shares = Object.fromEntries(AREAS.map((a) => [a, (time.get(a) ?? 0) / busy]))
  const pct = (x) => `${(100 * x).toFixed(1)} %`
  const top = (fns) =>
    [...fns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([label, us]) => `${label} ${pct(us / busy)}`)
      .join('; ')
  let text = AREAS.map((a) => `${a} ${pct(shares[a])}`).join(', ')
  for (const [area, fns] of Object.entries(frames))
    if (fns.size > 0) text += `\n    ${area} frames: ${top(fns)}`
  return { shares, text }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(summarizeAreas(JSON.parse(readFileSync(process.argv[2], 'utf8'))).text)
}
