// Summarises a V8 .cpuprofile: self time by function (name, file:line) and by package, as a share
// of all samples. `node bench/profile-summary.mjs <file.cpuprofile> [top]` or imported.
import { readFileSync } from 'node:fs'

/** The top `top` self-time functions and the self time per package/area, as text. */
export function summarizeProfile(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  const dt = profile.timeDeltas
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFn = new Map()
  const byArea = new Map()
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id)
    const key = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`
    byFn.set(key, (byFn.get(key) ?? 0) + us)
    const area = areaOf(f)
    byArea.set(area, (byArea.get(area) ?? 0) + us)
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
  const lines = [`total sampled ${(total / 1000).toFixed(0)} ms`, '-- self time by function --']
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${k}`)
  lines.push('-- self time by area --')
  for (const [k, us] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${k}`)
  return lines.join('\n')
}

function shortUrl(url) {
  if (!url) return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length)
  const m = /\/(packages|services)\/(.*)$/.exec(url)
  return m ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, '')
}

function areaOf(f) {
  const url = f.url
  if (!url) return f.functionName.startsWith('(') ? f.functionName : '(native/builtin)'
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const m = /\/(packages|services)\/([^/]+)\/(?:dist|src)\/(.*?)(?:\.[jt]s)?$/.exec(url)
  return m ? `${m[2]}/${m[3]}` : url
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(
    summarizeProfile(JSON.parse(readFileSync(process.argv[2], 'utf8')), Number(process.argv[3] ?? 25)),
  )
}
