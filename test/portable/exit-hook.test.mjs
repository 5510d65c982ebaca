// The exit hook and the sweep across real processes, over the built package, on any node: Linux,
// Linux without /proc, and Windows' node.exe under Wine (scripts/portable.mjs). Each child costs
// about 1.5 s under Wine: the tests start as few as they can.
//
// What Windows does that no test here can show: Ctrl+Break (SIGBREAK) and closing the console
// window (SIGHUP, with about 10 s before Windows ends the process) reach Node only from a
// console, which neither Wine nor a CI runner has. The hook listens on both on win32
// (src/owner/exit-signals.ts) and ends the process as it does on Ctrl+C: test/unit/exit-signals.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { TempFileManager } from '../../dist/index.js';
import { cli, ctrlC, scratch, startChild, win32 } from './helpers.mjs';

const parent = scratch(after, 'exit');
let roots = 0;
const newRoot = () => path.join(parent, `root${roots++}`);

function assertGone(report) {
  for (const made of [...report.sessions, ...report.files]) assert.equal(fs.existsSync(made), false, `${made} is gone`);
}

for (const [mode, how, ending] of [
  ['exit', 'process.exit(3)', (end) => assert.equal(end.code, 3)],
  ['throw', 'an uncaught error', (end) => assert.match(end.stderr, /uncaught on purpose/)],
  ['natural', 'its natural end', (end) => assert.equal(end.code, 0)],
]) {
  test(`the exit hook removes a process's files on ${how}`, async () => {
    const child = startChild(mode, newRoot());
    const report = await child.firstLine();
    const end = await child.ended;
    ending(end);
    assertGone(report);
  });
}

for (const signalExit of [false, true]) {
  test(`the exit hook removes a process's files on Ctrl+C (SIGINT)${signalExit ? ", then signal-exit's handlers run," : ''} and the process ends of it`, async (t) => {
    const signal = ctrlC();
    // CI runs the suite on win32 only through the runner, which relays the signal: nothing skips there.
    if (!signal.send && process.env.CI) assert.fail(`CI is set and ${signal.why}`);
    if (!signal.send) return t.skip(signal.why);
    // Deno re-raises the signal before signal-exit's own handler has always written: not proven there (docs/platforms.md, "Deno 2").
    if (signalExit && 'Deno' in globalThis) return t.skip("on Deno, signal-exit's handlers are not proven to run after the hook");
    const token = `sigint-${process.pid}-${Date.now()}`;
    const marker = path.join(parent, `${token}.json`);
    const child = startChild('sigint', newRoot(), signalExit ? marker : '-', token);
    const report = await child.firstLine();
    await signal.send(child, token);
    const end = await child.ended;
    assertGone(report);
    if (signalExit) {
      const ran = JSON.parse(fs.readFileSync(marker, 'utf8'));
      assert.deepEqual(ran, { code: null, signal: 'SIGINT', sessionLeft: false }, "signal-exit's handler ran, after the hook");
    }
    // Windows has no death by signal: a process that signals itself is ended by TerminateProcess,
    // with code 1.
    if (win32) assert.equal(end.code, 1);
    else assert.equal(end.signal, 'SIGINT');
  });
}

// A process killed outright runs nothing: SIGKILL on POSIX; on Windows any child.kill() is
// TerminateProcess. What it left is the sweep's: here by mgr.sweep() in one root, by the CLI in
// the other.
test("a killed process's sessions: left as they were, then swept by mgr.sweep() and by the CLI, which prints paths as they are", async () => {
  const [byApi, byCli] = [newRoot(), newRoot()];
  const child = startChild('wait', byApi, byCli);
  const report = await child.firstLine();
  child.proc.kill(win32 ? undefined : 'SIGKILL');
  await child.ended;
  for (const made of [...report.sessions, ...report.files]) assert.ok(fs.existsSync(made), `${made} is left: nothing ran`);

  const mgr = new TempFileManager({ root: byApi, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, graceMs: 0 });
  const swept = await mgr.sweep();
  assert.equal(swept.sessionsRemoved, 1);
  assert.deepEqual(swept.errors, []);
  assert.equal(fs.existsSync(report.sessions[0]), false);
  await mgr.close();

  const listed = await cli('ls', '--root', byCli, '--grace-ms', '0');
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`orphan\\s.*${path.basename(report.sessions[1])}`), 'ls shows the session as an orphan');
  const cleaned = await cli('sweep', '--root', byCli, '--grace-ms', '0');
  assert.equal(cleaned.code, 0, cleaned.stderr);
  assert.ok(cleaned.stdout.includes(`swept ${byCli} `), `the root is printed as it is (one backslash each on win32):\n${cleaned.stdout}`);
  assert.match(cleaned.stdout, /removed 1 orphaned session/);
  assert.equal(fs.existsSync(report.sessions[1]), false);
  for (const made of report.files) assert.equal(fs.existsSync(made), false, `${made} is swept`);
});
