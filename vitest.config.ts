import os from 'node:os';
import { defineConfig } from 'vitest/config';

/** Tests that need a service beyond Node (Redis, Chromium): `npm run test:e2e` runs them. */
export const serviceTests = ['test/e2e/bullmq.test.ts', 'test/e2e/browser.test.ts', 'test/e2e/browser-to-bucket.test.ts'];

/**
 * The long matrices and rounds, `npm run test:long`: each repeats a promise that `npm test`
 * proves once (the exit hook on each signal, a blocked owner's heartbeat, a failing call, a kill
 * or a race during keep(), claimers racing for one lease, names vanishing under the sweeps) over
 * every cell, gap, step or round, for minutes. CI runs them in steps of their own.
 */
export const longTests = [
  'test/process/exit-hook-signals.test.ts',
  'test/process/liveness-starts.test.ts',
  'test/process/keep-crash.test.ts',
  'test/process/keep-race.test.ts',
  'test/process/handoff.test.ts',
  'test/process/vanishing-names.test.ts',
  'test/reliability/fault-matrix.test.ts',
];

/** Tests that drive Windows' node.exe under Wine: `npm run test:wine` (vitest.wine.config.ts) runs them. */
export const wineTests = ['test/wine/**/*.test.ts'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...serviceTests, ...longTests, ...wineTests],
    pool: 'forks',
    // Most tests wait on child processes, signals and timers: two files more than there are cores
    // (four on two, as CI's Node 22 run beside a busy loop per core passes it).
    maxWorkers: os.availableParallelism() + 2,
    // A machine loaded at twice its cores makes a test three times as long as on an idle one: the
    // bounds are for a hang, not a speed (the slowest tests, a 256 MiB upload and the TSDoc check,
    // took a little over 60 s on a loaded two-core machine).
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
