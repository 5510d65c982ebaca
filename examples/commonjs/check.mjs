// End-to-end check: runs index.cjs on a fresh root and verifies that require() loaded the CJS
// build, that the kept report is whole, that a bad option was refused with its code, and that
// nothing is left under the root. Exits non-zero on failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = import.meta.dirname;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-check-commonjs-'));
try {
  const { stdout: resolved } = await run(process.execPath, ['-p', "require.resolve('tempfile-manager')"], { cwd: here });
  assert.match(resolved.trim(), /dist[/\\]index\.cjs$/, 'require() resolves to the CommonJS build');
  const { stdout } = await run(process.execPath, [path.join(here, 'index.cjs')], { env: { ...process.env, EXAMPLE_ROOT: root }, timeout: 60_000 });
  process.stdout.write(stdout);
  assert.match(stdout, /^kept report\.txt: 2 rows, sha256:[0-9a-f]{64}$/m);
  assert.match(stdout, /^refused: ERR_TEMPFILE_INVALID_OPTION: .*staleMs/m);
  assert.match(stdout, /^left under the root: nothing$/m);
  assert.deepEqual(fs.readdirSync(root).sort(), ['.tempfile-manager'], 'only the root marker is left');
  console.log('commonjs: check passed');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
