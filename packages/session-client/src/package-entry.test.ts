import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

describe('the published entry', () => {
  it('imports nothing but its own files, so it runs in browsers as well as Node', () => {
    const files = readdirSync(DIST).filter((name) => name.endsWith('.js'))
    expect(files).toContain('index.js')
    for (const file of files) {
      const source = readFileSync(`${DIST}${file}`, 'utf8')
      const specifiers = [...source.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1])
      expect(
        specifiers.filter((s) => !s?.startsWith('./')),
        file,
      ).toEqual([])
    }
  })
})
