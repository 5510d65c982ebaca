import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const audit = path.join(import.meta.dirname, 'audit.mjs');
const hasStrace = spawnSync('strace', ['-V']).status === 0;

// The audit judges the form of every file-system call the library makes, not the outcome of one
// attack: a new call by path under the root, or an open that can follow a link or block, fails
// here whoever writes it. audit.mjs lists the calls it allows, each with its reason.
describe('system-call audit (strace)', () => {
  it('every call under the root goes through a pinned descriptor, and no open can follow a link or block', (ctx) => {
    if (!hasStrace) {
      if (process.env.CI) throw new Error('strace is missing and CI is set: install it (apt-get install -y strace).');
      console.warn('skipped: the system-call audit needs strace (apt-get install -y strace); CI runs it');
      ctx.skip('the system-call audit needs strace (apt-get install -y strace); CI runs it');
    }
    const run = spawnSync(process.execPath, [audit, '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as { calls: number; findings: { rule: string; call: string }[] };
    expect(report.calls).toBeGreaterThan(100);
    expect(report.findings).toEqual([]);
    expect(run.status).toBe(0);
  });
});

describe('the audit itself', () => {
  it('flags a call by path under the root, and an open that can follow a link or block', async () => {
    const auditModule: string = './audit.mjs'; // plain JavaScript, typed here
    const { judge, libraryCalls } = (await import(auditModule)) as {
      judge(calls: unknown[], where: { root: string; dest: string }): { rule: string; call: string }[];
      libraryCalls(trace: string): unknown[];
    };
    const trace = [
      '10 unlink("/w/root/s/f") = 0',
      '10 unlink("/proc/10/fd/19/f") = 0',
      '10 openat(AT_FDCWD, "/proc/10/fd/19/f", O_RDONLY|O_CLOEXEC) = 20',
      '10 openat(AT_FDCWD, "/proc/10/fd/19/g", O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC) = 20',
      '10 openat(AT_FDCWD, "/proc/10/fd/19/h", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600) = 20',
      '10 access("/tempfile-manager-audit-marker/user-begin", F_OK) = -1 ENOENT (No such file or directory)',
      '10 unlink("/w/root/s/planted") = 0',
      '11 unlink("/w/root/s/other-thread") = 0',
      '10 access("/tempfile-manager-audit-marker/user-end", F_OK) = -1 ENOENT (No such file or directory)',
    ].join('\n');
    const findings = judge(libraryCalls(trace), { root: '/w/root', dest: '/w/dest' });
    expect(findings.map((f) => f.call)).toEqual([
      '10 unlink("<root>/s/f") = 0',
      '10 openat(AT_FDCWD, "/proc/10/fd/19/f", O_RDONLY|O_CLOEXEC) = 20',
      '11 unlink("<root>/s/other-thread") = 0',
    ]);
  });
});
