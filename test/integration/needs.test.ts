// `npm test` needs only Node, even as root (a container, a CI runner): a test that needs a system
// package or root skips where it is missing and says why on the console; under CI=1 it runs and
// fails instead. Proved on the sshfs test (sshd, sshfs, fusermount3) with those commands hidden
// from the PATH, as root or not, and on a probe that needs a command no machine has.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../helpers/roots.js';
import { missing } from '../helpers/privileges.js';

const repo = path.join(import.meta.dirname, '../..');
const vitest = path.join(repo, 'node_modules/vitest/vitest.mjs');

/** A PATH holding only `sh` and `node`: no sshd, sshfs, faketime, unshare, mount. */
function barePath(): string {
  const bin = path.join(scratchDir(), 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

/** One test file through vitest's default reporter, in a child with `env` (and without CI unless set there). */
function runFile(file: string, env: NodeJS.ProcessEnv): { status: number | null; output: string } {
  const { CI: _ci, ...inherited } = process.env;
  const run = spawnSync(process.execPath, [vitest, 'run', file], {
    cwd: repo,
    encoding: 'utf8',
    env: { ...inherited, ...env, FORCE_COLOR: '0', NO_COLOR: '1' },
    timeout: 120_000,
  });
  return { status: run.status, output: `${run.stdout}\n${run.stderr}` };
}

describe('a test that needs what this machine lacks', () => {
  it('skips with CI unset, as root or not, and prints one line saying what it needs', () => {
    const { status, output } = runFile('test/process/sshfs-listing.test.ts', { PATH: barePath() });
    expect(status, output).toBe(0);
    const reasons = output.split('\n').filter((line) => line.startsWith('skipped: '));
    expect(reasons, output).toHaveLength(1);
    expect(reasons[0]).toMatch(/needs .*sshd.*sshfs/);
    expect(reasons[0]).toContain('openssh-server');
  });

  it('fails under CI=1, naming what is missing', () => {
    const { status, output } = runFile('test/process/sshfs-listing.test.ts', { PATH: barePath(), CI: '1' });
    expect(status, output).toBe(1);
    expect(output).toMatch(/needs .*sshd.*sshfs.*CI is set/);
  });

  it('says what is missing: root, a command, a file, and the package to install', () => {
    expect(missing({ command: 'node' })).toBeUndefined();
    expect(missing({ command: 'tfm-no-such-command', package: 'tfm-tools' })).toBe(
      'needs tfm-no-such-command on the PATH (Debian: apt-get install tfm-tools)',
    );
    expect(missing({ file: '/nonexistent/libtfm.so' })).toBe('needs /nonexistent/libtfm.so');
    expect(missing({ root: 'chattr +i' })).toBe(process.getuid?.() === 0 ? undefined : 'needs root (chattr +i)');
  });
});
