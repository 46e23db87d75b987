// Test runner settings: tests run on the Node 24 that npm puts first on PATH.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Thread tests spawn their own workers; forks keep each file's workers isolated.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
