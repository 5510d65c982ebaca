// End-to-end check: runs run.mjs (its own redis-server, the API, two worker processes, one of them
// SIGKILLed mid-job) on a fresh root, and verifies that every job completed with the right result,
// the killed one through the second worker, and that nothing is left under the root.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-bullmq-'));
try {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(import.meta.dirname, 'run.mjs')], {
    env: { ...process.env, EXAMPLE_ROOT: root },
    timeout: 120_000,
  }).catch((err) => {
    process.stdout.write(err.stdout ?? '');
    throw err;
  });
  process.stdout.write(stdout);
  assert.equal(stdout.match(/^ok +job /gm)?.length, 4, 'four jobs completed with the right line count and digest');
  assert.doesNotMatch(stdout, /^BAD /m);
  const [, killedJob] = /in the middle of job (\S+);/.exec(stdout) ?? [];
  assert.ok(killedJob, 'a worker was killed mid-job');
  assert.match(stdout, new RegExp(`^job ${killedJob} stalled`, 'm'), 'BullMQ saw the killed job stall');
  assert.match(stdout, new RegExp(`^ok +job ${killedJob} .*completed by worker 2`, 'm'), 'the killed job completed through worker 2');
  assert.deepEqual(fs.readdirSync(root, { recursive: true }).sort(), ['.tempfile-manager', 'handoff'], 'nothing left under the root');
  console.log('bullmq: check passed');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
