import { defineConfig } from 'vitest/config'
import mutation from './vitest.mutation.config.js'

// The tests of the scoped mutation run of the log's decision code (stryker.decision.config.json):
// those of vitest.mutation.config.ts without the ones that exercise other parts (the lock, the
// verifier's pair table and its chunked/parallel pass). They reach the mutated lines only through
// EventLog.open and would otherwise run, slowly, for every mutant there.
export default defineConfig({
  test: {
    ...mutation.test,
    exclude: [
      ...(mutation.test?.exclude ?? []),
      'src/lock.test.ts',
      'src/verify-pairs.test.ts',
      'src/verify-parallel.test.ts',
    ],
  },
})
