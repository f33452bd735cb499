import { defineConfig } from 'vitest/config'

// These tests run `pnpm start`'s script with both real services as child processes; on a shared
// 2-core CI machine that takes seconds, so each test gets 60 s before it counts as hung.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
