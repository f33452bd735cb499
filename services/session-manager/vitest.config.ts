import { defineConfig } from 'vitest/config'

// Tests here start real servers and child processes; on a shared 2-core CI machine a healthy test
// can take several seconds, so each gets 30 s before it counts as hung (individual tests may ask for more).
export default defineConfig({
  test: {
    // A mutation run's sandbox copies (.stryker-tmp) are not this package's tests.
    exclude: ['**/node_modules/**', '**/.stryker-tmp/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
