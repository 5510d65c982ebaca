import { expect, it } from 'vitest';
import { fixture, runToEndSync } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';

// Every descriptor of the process is taken (a low `ulimit -n`, then /dev/null opened until EMFILE)
// when a temp file's streams are opened: each stream's 'error' is a typed error of the library
// (a FileSystemError with syscallCode EMFILE) that names the file's public path, never the
// /proc/<pid>/fd/<fd>/<name> path the open went through.

interface Shown {
  readonly typed: boolean;
  readonly code: string;
  readonly syscallCode?: string;
  readonly path?: string;
  readonly message: string;
}

it('streams opened while every descriptor is taken emit a typed EMFILE error naming the public path', () => {
  const root = freshRoot();
  const { stdout: out } = runToEndSync('sh', ['-c', 'ulimit -n 128 && exec "$0" "$@"', process.execPath, fixture('exhausted-streams.mjs'), root], {
    what: 'the child with every descriptor taken',
    timeoutMs: 50_000,
  });
  const report = JSON.parse(out) as { held: number; file: string; content: string; read: Shown; write: Shown; truncating: Shown };
  expect(report.held).toBeGreaterThan(0);
  for (const shown of [report.read, report.write, report.truncating]) {
    expect(shown).toMatchObject({ typed: true, code: 'ERR_TEMPFILE_IO', syscallCode: 'EMFILE', path: report.file });
    expect(shown.message).toContain(report.file);
    expect(shown.message).not.toContain('/proc/');
  }
  expect(report.content).toBe('content'); // nothing was truncated
});
