// tempfile-manager/testing from a suite's side, in both runners for real: a vitest run and a
// `node --test` run of a file using the fixture (test/fixtures/testing/). A run is SIGKILLed
// (its whole process group: the runner and its workers) while a test holds a file; the next run
// has a passing and a failing test make files, and reports whether they outlived their tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, runToEnd } from '../helpers/child.js';
import { TestDisk } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';

const disk = new TestDisk();
afterEach(() => disk.cleanup());

const repo = path.join(import.meta.dirname, '../..');
const runners = {
  vitest: [path.join(repo, 'node_modules/vitest/vitest.mjs'), 'run', '--config', fixture('testing/vitest.config.mjs')],
  'node:test': ['--test', fixture('testing/node-scope.fixture.mjs')],
} as const;

interface Report {
  readonly leftover?: string;
  readonly passed?: string[];
  readonly failed?: string[];
  readonly left?: string[];
}

function reports(file: string): Report[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Report);
}

describe.each(Object.keys(runners) as (keyof typeof runners)[])('tempfile-manager/testing under %s', (runner) => {
  it("removes a test's files when it passes and when it fails, and sweeps what a killed run left", async () => {
    const scratch = disk.scratchDir();
    // The vitest file gives the fixture { root }; the node:test file takes the default root, under TMPDIR.
    const env = { TFM_TESTING_ROOT: path.join(scratch, 'root'), TMPDIR: scratch, TFM_TESTING_REPORT: path.join(scratch, 'report.jsonl'), CI: '', FORCE_COLOR: '0' };

    // The run killed mid-test: its whole process group, as a cancelled CI job is.
    const killedRun = spawn(process.execPath, [...runners[runner]], { cwd: repo, detached: true, stdio: 'ignore', env: { ...process.env, ...env, TFM_TESTING_KILLED: '1' } });
    const killedEnd = new Promise((resolve) => killedRun.on('close', resolve));
    try {
      await until(() => reports(env.TFM_TESTING_REPORT).length > 0, 120_000, `the ${runner} run to make its file`);
    } finally {
      process.kill(-killedRun.pid!, 'SIGKILL');
      await killedEnd;
    }
    const leftover = reports(env.TFM_TESTING_REPORT)[0]!.leftover!;
    expect(fs.existsSync(leftover), 'the killed run left its file').toBe(true);
    expect(leftover.startsWith(scratch)).toBe(true);
    fs.rmSync(env.TFM_TESTING_REPORT);

    // The next run: one test fails on purpose, so the runner exits 1.
    const next = runToEnd(process.execPath, [...runners[runner]], { cwd: repo, env, timeoutMs: 150_000, what: `the ${runner} run` });
    await expect(next).rejects.toThrow(/exited with code 1/);
    const [report] = reports(env.TFM_TESTING_REPORT);
    expect(report?.passed).toHaveLength(2);
    expect(report?.failed).toHaveLength(1);
    expect(report?.left, 'files that outlived their test').toEqual([]);
    expect(fs.existsSync(leftover), "the killed run's file, once the next run started").toBe(false);
  });
});

it("leaves no session under the root once a vitest run on worker threads ends (pool: 'threads')", async () => {
  const scratch = disk.scratchDir();
  const root = path.join(scratch, 'root');
  const env = { TFM_TESTING_ROOT: root, TMPDIR: scratch, TFM_TESTING_REPORT: path.join(scratch, 'report.jsonl'), CI: '', FORCE_COLOR: '0' };
  const config = fixture('testing/vitest.threads.config.mjs');
  await runToEnd(process.execPath, [path.join(repo, 'node_modules/vitest/vitest.mjs'), 'run', '--config', config], { cwd: repo, env, timeoutMs: 150_000, what: 'the vitest run on threads' });
  // The run ended: its workers' sessions and their locks are gone, whatever ended the workers.
  expect(fs.readdirSync(root).filter((name) => name.startsWith('session_'))).toEqual([]);
});
