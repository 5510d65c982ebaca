// Deno's permissions: the library needs them all (src/base/deno-permissions.ts says why); short of
// them a manager refuses to start, naming --allow-all, and makes nothing. Also the two facts of
// Deno that make it so, checked on the Deno under test: short of all permissions it follows a
// symbolic link on an O_NOFOLLOW open, and it refuses /proc/self/fd. Run by scripts/runtimes.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { runOn, scratch } from './helpers.mjs';

const parent = scratch(after, 'runtimes-deno');
const EVERY_ALLOW_FLAG = ['read', 'write', 'net', 'env', 'sys', 'run', 'ffi', 'import'].map((name) => `--allow-${name}`);
let roots = 0;

async function newManager(denoFlags, ...rest) {
  const root = path.join(parent, `root${roots++}`);
  const end = await runOn('deno', 'new-manager.mjs', [root, ...rest], { denoFlags });
  assert.equal(end.code, 0, end.stderr);
  return { root, outcome: end.lines[0] };
}

for (const [flags, withheld] of [
  [['--allow-read', '--allow-write', '--allow-env', '--allow-sys'], 'net, run, ffi, import'],
  [['--allow-read', '--allow-write', '--allow-env', '--allow-sys', '--allow-run'], 'net, ffi, import'],
  [['-A', '--deny-net'], 'net'],
  [['-A', '--deny-read=/etc/shadow'], 'read'],
]) {
  test(`deno ${flags.join(' ')}: new TempFileManager() throws InvalidOptionError naming --allow-all and what is withheld; nothing is made`, async () => {
    const { root, outcome } = await newManager(flags);
    assert.equal(outcome.code, 'ERR_TEMPFILE_INVALID_OPTION', JSON.stringify(outcome));
    assert.equal(outcome.option, '--allow-all');
    assert.ok(outcome.message.includes(`not granted in full: ${withheld})`), outcome.message);
    assert.match(outcome.message, /run deno with --allow-all \(-A\) and no --deny-\* flag/);
    assert.equal(fs.existsSync(root), false);
  });
}

for (const flags of [['-A'], EVERY_ALLOW_FLAG]) {
  test(`deno ${flags.length > 1 ? 'with every --allow-* flag' : '-A'}: the manager makes its files`, async () => {
    const { outcome } = await newManager(flags);
    assert.equal(outcome.made?.length, 1, JSON.stringify(outcome));
  });
}

test('a permission revoked while the manager runs: a FileSystemError whose syscallCode is NotCapable, naming --allow-all', async () => {
  const { outcome } = await newManager(['-A'], 'ffi');
  assert.equal(outcome.code, 'ERR_TEMPFILE_IO', JSON.stringify(outcome));
  assert.equal(outcome.syscallCode, 'NotCapable');
  assert.match(outcome.message, /: NotCapable\. Deno refused it\. .*--allow-all \(-A\)/);
});

test('why: short of all permissions, Deno follows a symbolic link on an O_NOFOLLOW open and refuses /proc/self/fd; with them, neither', async () => {
  const dir = path.join(parent, 'links');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'target'), 'data');
  const link = path.join(dir, 'link');
  fs.symlinkSync('target', link);
  const partial = await runOn('deno', 'deno-facts.mjs', [link], { denoFlags: ['-A', '--deny-net'] });
  assert.deepEqual(partial.lines, [{ noFollow: 'followed', procSelfFd: 'NotCapable' }], partial.stderr);
  const all = await runOn('deno', 'deno-facts.mjs', [link], { denoFlags: ['-A'] });
  assert.deepEqual(all.lines, [{ noFollow: 'ELOOP', procSelfFd: 'listed' }], all.stderr);
});
