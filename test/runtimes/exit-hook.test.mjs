// The exit hook on Bun and Deno: a process's sessions, their locks and files are gone after
// SIGINT, SIGTERM and SIGHUP (and the process dies of that signal), an uncaught error and an
// unhandled rejection. Run by scripts/runtimes.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { scratch, startOn } from './helpers.mjs';

const parent = scratch(after, 'runtimes-exit');
const child = path.join(import.meta.dirname, '..', 'portable', 'fixtures', 'child.mjs');
let roots = 0;

function assertGone(report) {
  const made = [...report.sessions, ...report.sessions.map((session) => `${session}.lock`), ...report.files];
  assert.deepEqual(made.filter((at) => fs.existsSync(at)), [], 'the sessions, their locks and their files are gone');
}

for (const runtime of ['bun', 'deno']) {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    test(`${runtime}: ${signal} removes the process's sessions, and it dies of ${signal}`, async () => {
      const running = startOn(runtime, child, ['wait', path.join(parent, `root${roots++}`)]);
      const report = await running.firstLine();
      running.proc.kill(signal);
      const end = await running.ended;
      assert.equal(end.signal, signal, end.stderr);
      assertGone(report);
    });
  }

  for (const [mode, what, said] of [['throw', 'an uncaught error', /uncaught on purpose/], ['reject', 'an unhandled rejection', /unhandled on purpose/]]) {
    test(`${runtime}: ${what} removes the process's sessions, and it still fails`, async () => {
      const running = startOn(runtime, child, [mode, path.join(parent, `root${roots++}`)]);
      const report = await running.firstLine();
      const end = await running.ended;
      assert.match(end.stderr, said);
      assert.notEqual(end.code, 0);
      assertGone(report);
    });
  }
}
