import os from 'node:os';
import { defineConfig } from 'vitest/config';

/** Tests that need a service beyond Node (Redis, Chromium): `npm run test:e2e` runs them. */
export const serviceTests = ['test/e2e/bullmq.test.ts', 'test/e2e/browser.test.ts'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...serviceTests],
    pool: 'forks',
    // Most tests wait on child processes, signals and timers: two files at a time even on two cores.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
