#!/usr/bin/env node
// `pnpm check:packages` (part of `pnpm test`): checks every public workspace package the way an outside
// consumer gets it. Each is packed with `pnpm pack` (workspace: ranges become versions) and the tarball
// must pass `publint --strict` and `attw --profile esm-only`, ship LICENSE (the root one) and README.md,
// no source maps (they would point at an unshipped ../src), only absolute links in its README, and the
// publishing metadata. Then `changeset status` checks that changed packages have changesets (when the
// base branch is present: a CI clone of one branch has no base to compare with, and that is fine).
// Build the packages first (turbo does: the task depends on their builds).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8')
const baseBranch = JSON.parse(readFileSync(join(root, '.changeset/config.json'), 'utf8')).baseBranch
const scratch = mkdtempSync(join(tmpdir(), 'care-check-packages-'))
const problems = []
const tarballs = new Map()

function run(command, args, cwd = root) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 5 * 60_000 })
  const failure = result.error ? `\n${result.error.message}` : ''
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}${failure}`.trim() }
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
    tarballs.set(name, tarball)
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

  if (process.env.CARE_SKIP_CONSUMER_CHECK === '1')
    console.log('consumer check: skipped (CARE_SKIP_CONSUMER_CHECK=1)')
  else consumerCheck(tarballs)

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

/**
 * A fresh npm project outside the workspace installs the packed tarballs (and the frameworks from the
 * npm registry), then compiles the READMEs' TypeScript examples under strict NodeNext settings and
 * imports every entry point with plain Node: what an outside team does first.
 */
function consumerCheck(packed) {
  // CARE_CONSUMER_DIR keeps the consumer project (and its npm install) between local runs.
  const dir = process.env.CARE_CONSUMER_DIR ?? join(scratch, 'consumer')
  const started = performance.now()
  execFileSync('mkdir', ['-p', join(dir, 'src')])
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  )
  const install = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...packed.values(),
      'express@^5',
      '@types/express@^5',
      'hono@^4',
      '@hono/node-server@^2',
      'typescript@~5.9',
      '@types/node@^20',
    ],
    dir,
  )
  if (!install.ok) {
    problems.push(`consumer: npm install of the tarballs failed\n${install.output}`)
    return
  }
  // Free names the README examples assume, declared so each block compiles as its own module.
  const prelude = [
    'declare const annotateUrl: string',
    'declare const auditUrl: string',
    'declare const store: { has(id: string): Promise<boolean> }',
    'declare function currentCallerToken(): string',
    'declare const app: import("express").Express',
  ].join('\n')
  let examples = 0
  for (const [name, tarball] of packed) {
    const readme = tarText(tarball, 'README.md')
    for (const [, block] of readme.matchAll(/```ts\n([\s\S]*?)```/g)) {
      if (/^\s*return /m.test(block)) continue // a fragment of a handler, not a module
      const usesApp = /\bapp\b/.test(block) && !/const app =/.test(block)
      const file = join(dir, 'src', `example-${++examples}.ts`)
      const imports = block.match(/^import[\s\S]*?from '[^']+'\n/gm)?.join('') ?? ''
      const body = block.replace(/^import[\s\S]*?from '[^']+'\n/gm, '')
      writeFileSync(
        file,
        `// ${name} README example\n${imports}${prelude.replace(usesApp ? '' : /^declare const app.*$/m, '')}\n${body}\nexport {}\n`,
      )
    }
  }
  writeFileSync(
    join(dir, 'src', 'schemas-files.ts'),
    `import { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\nexport const file: string = require.resolve('@care/schemas/json-schema/SessionTaggedRecord.json')\n`,
  )
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        lib: ['ES2023', 'DOM'],
      },
      include: ['src'],
    }),
  )
  const tsc = run(
    process.execPath,
    [join(dir, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')],
    dir,
  )
  if (!tsc.ok)
    problems.push(`consumer: the README examples do not compile against the tarballs\n${tsc.output}`)
  const entries = [...packed.keys()].flatMap((name) => {
    const manifest = JSON.parse(tarText(packed.get(name), 'package.json'))
    return Object.keys(manifest.exports)
      .filter((key) => !key.includes('*') && !key.endsWith('.json'))
      .map((key) => (key === '.' ? name : `${name}/${key.slice(2)}`))
  })
  const imported = run(
    process.execPath,
    ['--input-type=module', '-e', entries.map((e) => `await import(${JSON.stringify(e)})`).join(';')],
    dir,
  )
  if (!imported.ok) problems.push(`consumer: importing ${entries.join(', ')} failed\n${imported.output}`)
  const seconds = ((performance.now() - started) / 1000).toFixed(0)
  console.log(
    `consumer check: ${examples} README examples compiled, ${entries.length} entry points imported (${seconds} s)`,
  )
}

if (problems.length > 0) {
  console.error(`\n${problems.length} package problem(s):\n- ${problems.join('\n- ')}`)
  process.exit(1)
}
console.log('packages: ok')
