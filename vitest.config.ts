import os from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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

/**
 * The compile-time checks, `npm run test:docs`: TSDoc on every export; every snippet of the README
 * and docs/ type-checked against the built declarations; the main entry's declarations (their
 * length, what they hide, a consumer of every entry compiled against them); an option added to an
 * interface and not to its list failing to compile. Each runs the TypeScript compiler (lint, not
 * behaviour: together about 1.5 minutes of a loaded two-core machine). CI runs them on Node 20.
 */
export const compileChecks = [
  'test/integration/tsdoc.test.ts',
  'test/integration/doc-types.test.ts',
  'test/integration/surface.test.ts',
  'test/unit/option-keys-compile.test.ts',
];

/** Tests that drive Windows' node.exe under Wine: `npm run test:wine` (vitest.wine.config.ts) runs them. */
export const wineTests = ['test/wine/**/*.test.ts'];

/**
 * The files that take longest (30 s to 90 s each on two cores at `npm test`'s load), started
 * first. A fresh clone has no timings of an earlier run, and vitest then starts the largest files
 * first: a long file started last made the run a minute longer than its tests' sum over workers.
 */
const slowest = [
  'test/reliability/leaks.test.ts',
  'test/process/liveness.test.ts',
  'test/process/hostile-trees.test.ts',
  'test/process/live-signal.test.ts',
  'test/process/liveness-no-proc.test.ts',
  'test/integration/layout.test.ts',
  'test/tus/tus-finish.test.ts',
  'test/e2e/upload.test.ts',
  'test/process/write-memory.test.ts',
];

class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = slowest.findIndex((name) => file.moduleId.endsWith(name));
      return at === -1 ? slowest.length : at;
    };
    const sorted = await super.sort(files);
    return sorted.map((file, order) => ({ file, order })).sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order).map(({ file }) => file);
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...serviceTests, ...longTests, ...compileChecks, ...wineTests],
    pool: 'forks',
    sequence: { sequencer: SlowestFirst },
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
