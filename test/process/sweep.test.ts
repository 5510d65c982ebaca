import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SweepReport } from '../../src/index.js';
import { fixture, nextJson, startChild, type ChildReport } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';

const STALE_MS = 2000;
/** A sweeper's staleMs under which a lock stays fresh for the whole test, however slow the machine. */
const FRESH_FOR_MS = 600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

async function sweepFromAnotherProcess(root: string, dry = false, graceMs = 0, staleMs = STALE_MS): Promise<SweepReport> {
  const { stdout } = await run(process.execPath, [fixture('sweep-child.mjs'), root, String(staleMs), dry ? 'dry' : 'real', String(graceMs)]);
  return JSON.parse(stdout) as SweepReport;
}

async function killed(script: string, args: string[]): Promise<ChildReport> {
  const running = startChild(script, args);
  const report = await nextJson<ChildReport>(running);
  running.child.kill('SIGKILL');
  await running.ended;
  return report;
}

function plantOutside(): { dir: string; file: string } {
  const dir = path.join(scratchDir(), 'outside');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'precious.txt'), 'precious');
  return { dir, file: path.join(dir, 'precious.txt') };
}

describe('the sweep, across real processes', () => {
  it("removes a SIGKILLed process's files at the next sweep, its lock fresh and grace or not, and never a live sibling's", async () => {
    const root = freshRoot();
    const dead = await killed('exit-child.mjs', [root, 'wait', String(STALE_MS)]);
    const sibling = startChild('exit-child.mjs', [root, 'wait', String(STALE_MS)]);
    const live = await nextJson<ChildReport>(sibling);
    // A lock fresh to the sweeper, whatever the machine's load: only the pid check can tell.
    const lockAge = Date.now() - fs.statSync(`${dead.session}.lock`).mtimeMs;
    expect(lockAge).toBeLessThan(FRESH_FOR_MS);

    const dry = await sweepFromAnotherProcess(root, true, 60_000, FRESH_FOR_MS);
    expect(dry).toMatchObject({ dryRun: true, sessionsRemoved: 1, filesRemoved: 4, liveSessionsSkipped: 1 });
    expect(fs.existsSync(dead.session)).toBe(true);

    const report = await sweepFromAnotherProcess(root, false, 60_000, FRESH_FOR_MS);
    expect(report).toMatchObject({ sessionsRemoved: 1, filesRemoved: 4, dirsRemoved: 2, liveSessionsSkipped: 1, errors: [] });
    expect(report.bytesFreed).toBe(4 + 4 + 8);
    expect(fs.existsSync(dead.session)).toBe(false);
    expect(fs.existsSync(`${dead.session}.lock`)).toBe(false);
    for (const file of live.files) expect(fs.existsSync(file)).toBe(true);
    sibling.child.kill('SIGTERM');
    await sibling.ended;
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });

  it('leaves the files of a live process whose event loop is blocked past staleMs', async () => {
    const root = freshRoot();
    const blocked = startChild('exit-child.mjs', [root, 'block', String(STALE_MS)]);
    const report = await nextJson<ChildReport>(blocked);
    await sleep(STALE_MS + 1000);
    const lockAge = Date.now() - fs.statSync(`${report.session}.lock`).mtimeMs;
    // Without /proc, the owner's beat thread keeps it fresh while the event loop is blocked
    // (test/process/liveness-starts.test.ts). With /proc the owner runs no thread: the process
    // check keeps it here, and its live signal in another PID namespace (live-signal.test.ts).
    if (/^(1|true|yes)$/i.test(process.env['TEMPFILE_MANAGER_NO_PROC'] ?? '')) expect(lockAge).toBeLessThan(STALE_MS);
    const sweep = await sweepFromAnotherProcess(root);
    expect(sweep).toMatchObject({ sessionsRemoved: 0, liveSessionsSkipped: 1 });
    blocked.child.stdin!.write('wake\n');
    const after = await nextJson<{ intact: boolean }>(blocked);
    expect(after.intact).toBe(true);
    expect((await blocked.ended).code).toBe(0);
  });

  it('four concurrent sweepers over 10,000 orphaned files leave nothing and report no error', async () => {
    const root = freshRoot();
    await killed('orphan-maker.mjs', [root, '5000', String(STALE_MS)]);
    await killed('orphan-maker.mjs', [root, '5000', String(STALE_MS)]);
    await sleep(STALE_MS + 1500); // proper-lockfile may stamp a new lock up to 1 s ahead
    const reports = await Promise.all(Array.from({ length: 4 }, () => sweepFromAnotherProcess(root)));
    for (const report of reports) expect(report.errors).toEqual([]);
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    const removed = reports.reduce((sum, r) => sum + r.filesRemoved, 0);
    // What each sweeper says it did, should the count fall short (seen once, 9,234, on a slow machine:
    // each sweeper's background sweep, every 6 s, removed files its printed report did not count).
    const said = JSON.stringify(reports.map((r) => ({ files: r.filesRemoved, dirs: r.dirsRemoved, sessions: r.sessionsRemoved, setAside: r.setAsideRemoved, left: r.left })));
    expect(removed, said).toBeGreaterThanOrEqual(10_000);
    expect(removed).toBeLessThanOrEqual(10_000 + 4 * 64); // a few races counted twice at most
  });

  it('never follows symlinks out of the root: in a session, or at the root level', async () => {
    const root = freshRoot();
    const outside = plantOutside();
    const dead = await killed('exit-child.mjs', [root, 'wait', String(STALE_MS)]);
    fs.symlinkSync(outside.file, path.join(dead.session, 'link-to-file'));
    fs.symlinkSync(outside.dir, path.join(dead.session, 'link-to-dir'));
    fs.symlinkSync(outside.dir, path.join(dead.files[2]!, 'nested-link'));
    // A symlink at the root's level, named like a dead session, pointing outside.
    const rootLink = path.join(root, path.basename(dead.session).replace(/_[0-9a-f]{16}$/, '_0123456789abcdef'));
    fs.symlinkSync(outside.dir, rootLink);
    await sleep(STALE_MS + 1500); // proper-lockfile may stamp a new lock up to 1 s ahead
    const report = await sweepFromAnotherProcess(root);
    expect(report.errors).toEqual([]);
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
    expect(fs.readdirSync(outside.dir)).toEqual(['precious.txt']);
    expect(fs.readFileSync(outside.file, 'utf8')).toBe('precious');
  });

  it('leaves alone what is not a session; the grace period does not protect a dead process of this machine', async () => {
    const root = freshRoot();
    const dead = await killed('exit-child.mjs', [root, 'wait', String(STALE_MS)]);
    fs.writeFileSync(path.join(root, 'not-ours.txt'), 'x');
    fs.mkdirSync(path.join(root, 'some-dir'));
    const { TempFileManager } = await import('../../src/index.js');
    const young = new TempFileManager({ root, staleMs: STALE_MS, graceMs: 60_000, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    expect(await young.sweep()).toMatchObject({ sessionsRemoved: 1, youngSessionsSkipped: 0 });
    expect(fs.existsSync(dead.session)).toBe(false);
    expect(fs.readdirSync(root).sort()).toEqual(['.tempfile-manager', 'not-ours.txt', 'some-dir']);
  });
});
