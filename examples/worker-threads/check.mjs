// End-to-end check: runs main.mjs on a fresh root and verifies every file was processed correctly,
// by more than one thread, and that nothing is left under the root. Exits non-zero on failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-worker-threads-'));
try {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(import.meta.dirname, 'main.mjs')], {
    env: { ...process.env, EXAMPLE_ROOT: root, THREADS: '3' },
    timeout: 60_000,
  });
  process.stdout.write(stdout);
  assert.equal(stdout.match(/^ok /gm)?.length, 8, 'eight files processed and verified');
  assert.doesNotMatch(stdout, /^BAD /m);
  const threads = Number(/processed by (\d+) threads/.exec(stdout)?.[1]);
  assert.ok(threads >= 2, `work spread over the threads (${threads})`);
  assert.deepEqual(fs.readdirSync(root, { recursive: true }).sort(), ['.tempfile-manager', 'handoff'], 'nothing left under the root');
  assert.deepEqual(fs.readdirSync(path.join(root, 'handoff')), []);
  console.log('worker-threads: check passed');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
