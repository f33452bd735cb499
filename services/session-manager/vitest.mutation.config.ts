import { defineConfig } from 'vitest/config'

// The tests the mutation run (stryker.config.json) uses: the lifecycle core's fast tests only.
// The contract suite runs on memory and the JSONL log; PostgreSQL and process tests are left out.
export default defineConfig({
  test: {
    include: ['src/sessions/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/.stryker-tmp/**'],
    env: { CARE_LIFECYCLE_EMBEDDED_ONLY: '1' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
