import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nextJson, startChild, type ChildReport, type RunningChild } from '../helpers/child.js';
import { itNeeds, PID_NAMESPACE } from '../helpers/privileges.js';
import { parseRootEntry } from '../../src/base/layout.js';
import { freshRoot, manager } from '../helpers/roots.js';

/** A name the library set aside for removal, as the sweep reads the root. */
const isSetAside = (name: string): boolean => parseRootEntry(name).kind === 'set-aside';

function expectGone(report: ChildReport): void {
  for (const file of report.files) expect(fs.existsSync(file), file).toBe(false);
  expect(fs.existsSync(report.session)).toBe(false);
  expect(fs.existsSync(`${report.session}.lock`)).toBe(false);
}

/** The exit hook's runs the child printed from here to its end. */
async function hookRuns(running: RunningChild): Promise<unknown[]> {
  const runs: unknown[] = [];
  for (let line = await running.lines.next(); !line.done; line = await running.lines.next()) {
    const parsed = JSON.parse(line.value) as { exitHook?: unknown };
    if (parsed.exitHook) runs.push(parsed.exitHook);
  }
  return runs;
}

describe('the exit hook, in real child processes', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s kills the child with that same signal and leaves no file', async (signal) => {
    const root = freshRoot();
    const running = startChild('exit-child.mjs', [root, 'wait']);
    const report = await nextJson<ChildReport>(running);
    for (const file of report.files) expect(fs.existsSync(file)).toBe(true);
    running.child.kill(signal);
    const ended = await running.ended;
    expect(ended.signal).toBe(signal);
    expect(ended.code).toBe(null);
    expectGone(report);
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('a busy process dies of SIGTERM at once: its code never runs on after its sessions are gone', async () => {
    for (let i = 0; i < 10; i++) {
      const running = startChild('exit-child.mjs', [freshRoot(), 'busy']);
      const report = await nextJson<ChildReport>(running);
      await new Promise((resolve) => setTimeout(resolve, 20 + i * 7));
      running.child.kill('SIGTERM');
      const ended = await running.ended;
      expect(ended.stderr).toBe('');
      expect(ended).toMatchObject({ code: null, signal: 'SIGTERM' });
      expectGone(report);
    }
  });

  it('a normal exit leaves nothing, with exit code 0', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'normal']);
    const report = await nextJson<ChildReport>(running);
    expect((await running.ended).code).toBe(0);
    expectGone(report);
  });

  it('process.exit(3) leaves nothing and keeps exit code 3', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'exit3']);
    const report = await nextJson<ChildReport>(running);
    const ended = await running.ended;
    expect(ended).toMatchObject({ code: 3, signal: null });
    expectGone(report);
  });

  it('an uncaught exception leaves nothing, and the process still dies of it', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'throw']);
    const report = await nextJson<ChildReport>(running);
    const ended = await running.ended;
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain('uncaught on purpose');
    expectGone(report);
  });

  // The hook runs as the error is about to end the process (Deno emits no 'exit' then); Node's
  // 'exit' follows, and runs it no second time.
  it.each(['throw', 'reject'])('%s: the hook runs once, its message says exit', async (mode) => {
    const running = startChild('exit-child.mjs', [freshRoot(), mode]);
    const report = await nextJson<ChildReport>(running);
    const runs = await hookRuns(running);
    expect((await running.ended).code).toBe(1);
    expect(runs).toEqual([expect.objectContaining({ reason: 'exit', tasks: 2 })]); // the manager's close and the ended threads' sessions' removal
    expectGone(report);
  });

  it.each(['app-handles-uncaught', 'app-captures-uncaught'])('%s: the app keeps the process, the files stay until it exits', async (mode) => {
    const running = startChild('exit-child.mjs', [freshRoot(), mode]);
    const report = await nextJson<ChildReport>(running);
    expect(await nextJson(running)).toEqual({ handled: true, intact: true });
    const runs = await hookRuns(running);
    expect(await running.ended).toMatchObject({ code: 0, signal: null });
    expect(runs).toEqual([expect.objectContaining({ reason: 'exit', tasks: 2 })]); // the manager's close and the ended threads' sessions' removal
    expectGone(report);
  });

  it('an unhandled rejection leaves nothing, and the process still dies of it', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'reject']);
    const report = await nextJson<ChildReport>(running);
    const ended = await running.ended;
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain('unhandled on purpose');
    expectGone(report);
  });

  it('never swallows a signal the app handles: the app decides, and its exit still cleans up', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'app-handles-sigterm']);
    const report = await nextJson<ChildReport>(running);
    running.child.kill('SIGTERM');
    const { value } = await running.lines.next();
    expect(value).toBe('app got SIGTERM');
    const ended = await running.ended;
    expect(ended).toMatchObject({ code: 0, signal: null });
    expectGone(report);
  });

  it('SIGKILL skips the hook: the files stay for the sweep', async () => {
    const running = startChild('exit-child.mjs', [freshRoot(), 'wait']);
    const report = await nextJson<ChildReport>(running);
    running.child.kill('SIGKILL');
    expect((await running.ended).signal).toBe('SIGKILL');
    for (const file of report.files) expect(fs.existsSync(file)).toBe(true);
  });

  it('exitHook: false opts a manager out', async () => {
    const { execFileSync } = await import('node:child_process');
    const root = freshRoot();
    const script = `
      import { TempFileManager } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      const kept = new TempFileManager({ root: ${JSON.stringify(root)}, exitHook: false, sweepOnStart: false }).file();
      const hooked = new TempFileManager({ root: ${JSON.stringify(root)}, sweepOnStart: false }).file();
      console.log(JSON.stringify([kept.path, hooked.path]));`;
    const [kept, hooked] = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
    expect(fs.existsSync(kept!)).toBe(true);
    expect(fs.existsSync(hooked!)).toBe(false);
  });
});

describe('one exit hook per process', () => {
  it('is shared by the ESM and the CJS build loaded together, and cleans up both', async () => {
    const running = startChild('dual-build.mjs', [freshRoot()]);
    const report = await nextJson<ChildReport & { registered: number; distinctClasses: boolean }>(running);
    expect(report.distinctClasses).toBe(true);
    // Two sessions, and the main thread's removal of its ended threads' sessions: once per process.
    expect(report.registered).toBe(3);
    for (const file of report.files) expect(fs.existsSync(file)).toBe(true);
    running.child.kill('SIGTERM');
    expect((await running.ended).signal).toBe('SIGTERM');
    for (const file of report.files) expect(fs.existsSync(file)).toBe(false);
  });

  // /proc of another PID namespace names other processes under our pids: directories are then
  // reached through /proc/self/fd (checked to name the opened directory), never /proc/<pid>/fd.
  itNeeds(PID_NAMESPACE)('where /proc belongs to another PID namespace, removal, the sweep and the exit still work', async () => {
    const root = freshRoot();
    const running = startChild('proc-elsewhere.mjs', [root], {}, { pidNamespaceWithOurProc: true });
    const report = await nextJson<{ pid: number; procSelf: string; handoffEntriesRemoved: number; errors: unknown[]; session: string; files: string[] }>(running);
    expect(Number(report.procSelf)).not.toBe(report.pid); // the set-up: /proc is not its own
    expect(report).toMatchObject({ handoffEntriesRemoved: 1, errors: [] });
    expect(await running.ended).toMatchObject({ code: 0, stderr: '' });
    expectGone(report);
    expect(fs.readdirSync(root).sort()).toEqual(['.tempfile-manager', 'handoff']);
    expect(fs.readdirSync(`${root}/handoff`)).toEqual([]);
  });
});

describe('the exit hook, with a file another handle holds (Windows semantics)', () => {
  it('SIGTERM: the hook does not hang on a delete-pending file, sets the session aside, and a sweep removes it', async () => {
    const root = freshRoot();
    const running = startChild('held-exit-child.mjs', [root]);
    const report = await nextJson<ChildReport>(running);
    running.child.kill('SIGTERM');
    const ended = await running.ended;
    expect(ended).toMatchObject({ code: null, signal: 'SIGTERM', stderr: '' });
    expectGone(report);
    const setAside = fs.readdirSync(root).filter(isSetAside);
    expect(setAside).toHaveLength(1);
    const sweeper = manager({ root });
    expect(await sweeper.sweep()).toMatchObject({ setAsideRemoved: 1, errors: [] });
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });
});
