// A child the test's own deadline killed says so, with what it last wrote on stderr: a reader of
// the failure must not take a machine too slow for the deadline for a failure of the library.
import { describe, expect, it } from 'vitest';
import { endFailure, runToEnd, runToEndSync } from '../helpers/child.js';

const hangs = ['-e', "process.stderr.write('still working\\n'); setInterval(() => {}, 1000)"];
const fails = ['-e', "process.stderr.write('first\\nthe reason\\n'); process.exitCode = 3"];

describe('a child run to its end', () => {
  it('killed by the deadline: the message says so, with the seconds', async () => {
    const error = await runToEnd(process.execPath, hangs, { what: 'the hanging child', timeoutMs: 1000 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(error?.message).toMatch(/^the hanging child was killed after 1 s by the test's timeout \(it was still running\); its stderr/);
  });

  it('killed by the deadline, blocking: the same message', () => {
    expect(() => runToEndSync(process.execPath, hangs, { what: 'the hanging child', timeoutMs: 1000 })).toThrow(
      /^the hanging child was killed after 1 s by the test's timeout \(it was still running\); its stderr/,
    );
  });

  it('a failure of its own: the exit code and its stderr, never the deadline', async () => {
    await expect(runToEnd(process.execPath, fails, { what: 'the failing child', timeoutMs: 60_000 })).rejects.toThrow(
      "the failing child exited with code 3; its stderr says:\nfirst\nthe reason",
    );
    expect(() => runToEndSync(process.execPath, fails, { what: 'the failing child', timeoutMs: 60_000 })).toThrow(
      "the failing child exited with code 3; its stderr says:\nfirst\nthe reason",
    );
  });

  it('the deadline message carries the tail of stderr, at most 30 lines', () => {
    const stderr = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
    const message = endFailure('the child', { code: null, signal: 'SIGKILL', timedOut: true, stderr, timeoutMs: 80_000 });
    expect(message).toMatch(/^the child was killed after 80 s by the test's timeout \(it was still running\); its stderr ends \(last 30 lines\):\nline 10\n/);
    expect(message).toMatch(/line 39$/);
    expect(message).not.toContain('line 9\n');
    expect(endFailure('the child', { code: null, signal: 'SIGKILL', timedOut: true, stderr: '', timeoutMs: 5000 })).toBe(
      "the child was killed after 5 s by the test's timeout (it was still running); its stderr is empty",
    );
  });
});
