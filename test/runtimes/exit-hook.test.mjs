// The exit hook on Bun and Deno: a process's sessions, their locks and files are gone after
// SIGINT, SIGTERM and SIGHUP (and the process dies of that signal), an uncaught error and an
// unhandled rejection, and at the natural end of a run of the runtime's own test runner (Deno's
// emits no 'exit' there, only 'unload'). Run by scripts/runtimes.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { runtimes, scratch, startOn, WAIT_MS } from './helpers.mjs';
import { spawnSync } from 'node:child_process';

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

for (const [runtime, args] of [['deno', ['test', '-A']], ['bun', ['test']]]) {
  test(`${runtime} ${args[0]}: at the natural end of the run, a manager left open has its session and file removed`, () => {
    const root = path.join(parent, `root${roots++}`);
    const report = path.join(parent, `report${roots}.json`);
    const fixture = path.join(import.meta.dirname, 'fixtures', 'runner-session.test.mjs');
    const run = spawnSync(runtimes()[runtime], [...args, fixture], { env: { ...process.env, NO_COLOR: '1', TFM_ROOT: root, TFM_REPORT: report }, encoding: 'utf8', timeout: WAIT_MS });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assertGone(JSON.parse(fs.readFileSync(report, 'utf8')));
  });
}
