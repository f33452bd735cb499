import { defineConfig } from 'vitest/config'

// The tests the mutation run (stryker.config.json) uses: every unit test of the log, with the
// exhaustive loops sampled (CARE_MUTATION_RUN=1: the torn tail at a sample of byte offsets, fewer
// generated logs for the chunked verifier), since each mutant re-runs the tests that reach it.
// The worker-thread tests load the built dist (never mutated, so no mutant runs them): build first.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/.stryker-tmp/**'],
    env: { CARE_MUTATION_RUN: '1' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
