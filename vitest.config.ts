import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Store suites share real PostgreSQL/Redis servers but isolate by schema / key prefix, so files may run in parallel.
    pool: 'forks',
  },
});
