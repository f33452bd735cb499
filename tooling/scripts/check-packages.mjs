#!/usr/bin/env node
// `pnpm check:packages` (part of `pnpm test`): checks every public workspace package the way an outside
// consumer gets it. Each is packed with `pnpm pack` (workspace: ranges become versions) and the tarball
// must pass `publint --strict` and `attw --profile esm-only`, ship LICENSE (the root one) and README.md,
// no source maps (they would point at an unshipped ../src), only absolute links in its README, and the
// publishing metadata. Then `changeset status` checks that changed packages have changesets (when the
// base branch is present: a CI clone of one branch has no base to compare with, and that is fine).
// Build the packages first (turbo does: the task depends on their builds).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8')
const baseBranch = JSON.parse(readFileSync(join(root, '.changeset/config.json'), 'utf8')).baseBranch
const scratch = mkdtempSync(join(tmpdir(), 'care-check-packages-'))
const problems = []

function run(command, args, cwd = root) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000 })
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() }
}

function tarText(tarball, path) {
  return execFileSync('tar', ['-xzOf', tarball, `package/${path}`], { encoding: 'utf8' })
}

const packages = ['packages', 'services', 'tooling'].flatMap((group) =>
  readdirSync(join(root, group)).map((name) => join(root, group, name)),
)
try {
  for (const dir of packages) {
    let manifest
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    } catch {
      continue
    }
    if (manifest.private) continue
    const name = manifest.name
    const packed = run('pnpm', ['pack', '--pack-destination', scratch], dir)
    if (!packed.ok) {
      problems.push(`${name}: pnpm pack failed\n${packed.output}`)
      continue
    }
    const tarball = join(
      scratch,
      readdirSync(scratch).find((f) => f.startsWith(name.slice(1).replace('/', '-'))),
    )
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean)
    const shipped = new Set(files.map((f) => f.replace(/^package\//, '')))
    if (!shipped.has('LICENSE') || tarText(tarball, 'LICENSE') !== rootLicense)
      problems.push(`${name}: LICENSE missing or different from the root LICENSE`)
    if (!shipped.has('README.md')) problems.push(`${name}: README.md missing`)
    const maps = [...shipped].filter((f) => f.endsWith('.map'))
    if (maps.length > 0) problems.push(`${name}: ships source maps (${maps.slice(0, 3).join(', ')}, ...)`)
    const readme = shipped.has('README.md') ? tarText(tarball, 'README.md') : ''
    for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!/^(https?:|#)/.test(target)) problems.push(`${name}: README link ${target} is not absolute`)
    }
    if (!readme.includes(`npm install ${name}`))
      problems.push(`${name}: README has no \`npm install ${name}\``)
    if (!/ESM only/i.test(readme)) problems.push(`${name}: README does not say it is ESM only`)
    const published = JSON.parse(tarText(tarball, 'package.json'))
    for (const field of ['license', 'repository', 'homepage', 'bugs', 'engines', 'exports']) {
      if (!published[field]) problems.push(`${name}: package.json has no ${field}`)
    }
    if (published.license !== 'Apache-2.0') problems.push(`${name}: license is not Apache-2.0`)
    if (published.type !== 'module') problems.push(`${name}: not "type": "module" (ESM only)`)
    if (JSON.stringify(published).includes('workspace:'))
      problems.push(`${name}: a workspace: range was published`)
    const publint = run('pnpm', ['exec', 'publint', 'run', '--strict', tarball])
    if (!publint.ok || !publint.output.includes('All good!'))
      problems.push(`${name}: publint --strict\n${publint.output}`)
    const attw = run('pnpm', ['exec', 'attw', '--profile', 'esm-only', '--format', 'ascii', tarball])
    if (!attw.ok) problems.push(`${name}: attw --profile esm-only\n${attw.output}`)
    console.log(
      `${name}: packed ${files.length} files; publint --strict ${publint.ok ? 'ok' : 'FAILED'}, attw esm-only ${attw.ok ? 'ok' : 'FAILED'}`,
    )
  }

  const hasBase = run('git', ['rev-parse', '--verify', '--quiet', baseBranch]).ok
  if (hasBase) {
    const status = run('pnpm', ['exec', 'changeset', 'status'])
    if (!status.ok) problems.push(`changeset status\n${status.output}`)
    else console.log('changeset status: ok')
  } else {
    console.log(`changeset status: skipped (no local "${baseBranch}" branch to compare with)`)
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

if (problems.length > 0) {
  console.error(`\n${problems.length} package problem(s):\n- ${problems.join('\n- ')}`)
  process.exit(1)
}
console.log('packages: ok')
