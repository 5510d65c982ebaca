import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TempFileManager, type HandoffTicket, type SweepReport } from '../../src/index.js';
import { LIBFAKETIME, nextJson, startChild, type ChildReport, type Elsewhere, type RunningChild } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';
import { sessionLockPath, sessionName } from '../../src/base/layout.js';
import { machineId } from '../../src/owner/process-identity.js';
import { FAKETIME, itNeeds, PID_NAMESPACE, type Needs } from '../helpers/privileges.js';

/** A child in a PID namespace of its own with its clock set apart. */
const ELSEWHERE_IN_TIME: Needs = { ...PID_NAMESPACE, command: ['unshare', 'faketime'], file: FAKETIME.file, package: 'util-linux faketime' };

const STALE_MS = 2000;
const GRACE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);
const cli = path.join(import.meta.dirname, '../../dist/cli.js');

// Children still running when a test ends (a failed one) are SIGKILLed: unshare ignores SIGTERM.
const spawned: RunningChild[] = [];
afterEach(() => {
  for (const running of spawned.splice(0)) if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
});

function start(script: string, args: string[], where: Elsewhere = {}): RunningChild {
  const running = startChild(script, args, {}, where);
  spawned.push(running);
  return running;
}

async function owner(root: string, mode: string, hostId: string, where: Elsewhere = {}): Promise<{ running: RunningChild; report: ChildReport }> {
  const running = start('owner-child.mjs', [root, mode, String(STALE_MS), hostId], where);
  return { running, report: await nextJson<ChildReport>(running) };
}

async function kill(running: RunningChild): Promise<void> {
  running.child.kill('SIGKILL');
  await running.ended;
}

const present = (report: ChildReport) => fs.existsSync(report.session) && report.files.every((f) => fs.existsSync(f));
const absent = (report: ChildReport) => !fs.existsSync(report.session) && !fs.existsSync(`${report.session}.lock`);

/** A long-running sweeper in this process (its own clock, its own memory of what it saw). */
function sweeper(root: string, hostId: string): TempFileManager {
  return new TempFileManager({ root, hostId, staleMs: STALE_MS, graceMs: GRACE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
}

/** Sweeps every 250 ms until `until` holds or `ms` passed; returns the reports and the time taken. */
async function sweepUntil(mgr: TempFileManager, until: () => boolean, ms: number): Promise<{ reports: SweepReport[]; tookMs: number }> {
  const started = performance.now();
  const reports: SweepReport[] = [];
  while (!until() && performance.now() - started < ms) {
    reports.push(await mgr.sweep());
    await sleep(250);
  }
  return { reports, tookMs: performance.now() - started };
}

describe('a live owner is never swept', () => {
  it('an app with its own hostId, stalled past staleMs, is judged by its process: the CLI with the default host id keeps it and reports the mismatch', async () => {
    const root = freshRoot();
    const { running, report } = await owner(root, 'block', 'app-host-1');
    // Stopped whole (SIGSTOP, as a frozen container): its beat thread, which beats while the event
    // loop is blocked, stops too, and the heartbeat goes stale.
    running.child.kill('SIGSTOP');
    await sleep(STALE_MS + 1000);
    expect(Date.now() - fs.statSync(`${report.session}.lock`).mtimeMs).toBeGreaterThan(STALE_MS); // stale by any clock
    // --watch looks twice: the stalled lock is seen unchanged, which would condemn another machine's session.
    const json = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--stale-ms', String(STALE_MS), '--watch', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ sessionsRemoved: 0, liveSessionsSkipped: 1, hostIdMismatches: ['app-host-1'] });
    const text = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--stale-ms', String(STALE_MS)]);
    expect(text.stdout).toContain('other host ids than this sweep');
    expect(text.stdout).toContain('app-host-1');
    const same = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--host-id', 'app-host-1', '--json']);
    expect(JSON.parse(same.stdout)).toMatchObject({ sessionsRemoved: 0, hostIdMismatches: [] });
    expect(present(report)).toBe(true);
    running.child.kill('SIGCONT');
    running.child.stdin!.write('wake\n');
    expect(await nextJson<{ intact: boolean }>(running)).toEqual({ intact: true });
    expect((await running.ended).code).toBe(0);
  });

  it('the CLI refuses a malformed --host-id', async () => {
    const failed = await run(cli, ['sweep', '--root', freshRoot(), '--host-id', 'a/b']).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toContain('--host-id');
  });

  itNeeds(ELSEWHERE_IN_TIME).for(['-1h', '+1h'])(
    'an app in another PID namespace with its clock at %s and the same host id: kept while it refreshes, removed once it is seen to stop',
    async (offset) => {
      const root = freshRoot();
      const { running, report } = await owner(root, 'wait', 'same-host', { pidNamespace: true, clockOffset: offset });
      // The clock really is apart: the lock's mtime is an hour away from ours.
      expect(Math.abs(Date.now() - fs.statSync(`${report.session}.lock`).mtimeMs)).toBeGreaterThan(3_000_000);
      const mgr = sweeper(root, 'same-host');
      const alive = await sweepUntil(mgr, () => !present(report), 3 * STALE_MS);
      expect(present(report)).toBe(true);
      expect(alive.reports.every((r) => r.sessionsRemoved === 0)).toBe(true);
      expect(alive.reports.at(-1)).toMatchObject({ liveSessionsSkipped: 1, hostIdMismatches: [] });

      await kill(running);
      const dead = await sweepUntil(mgr, () => absent(report), 4 * STALE_MS);
      expect(absent(report)).toBe(true);
      expect(dead.tookMs).toBeGreaterThan(STALE_MS / 2); // seen unchanged first, not judged by its clock
      await mgr.close();
    },
  );

  // An owner's staleMs is its own: a service may set a minute while a sweeper on another host keeps
  // the CLI's 2 s. The owner must beat faster than the shortest staleMs any sweeper may have.
  itNeeds(PID_NAMESPACE)('an app on another machine with a staleMs 30 times the sweeper\'s: kept while it refreshes', async () => {
    const root = freshRoot();
    const running = start('owner-child.mjs', [root, 'wait', String(30 * STALE_MS), 'other'], { pidNamespace: true });
    const report = await nextJson<ChildReport>(running);
    const mgr = sweeper(root, 'sweeper');
    const alive = await sweepUntil(mgr, () => !present(report), 4 * STALE_MS);
    expect(present(report)).toBe(true);
    expect(alive.reports.every((r) => r.sessionsRemoved === 0)).toBe(true);
    expect(alive.reports.at(-1)).toMatchObject({ liveSessionsSkipped: 1 });
    await kill(running);
    await mgr.close();
  });

  itNeeds(PID_NAMESPACE)('a claim held on another machine with a staleMs 30 times the claimer\'s: never taken over while it beats', async () => {
    const root = freshRoot();
    const producer = sweeper(root, 'producer');
    const ticket = await (await producer.write('held elsewhere', { suffix: '.bin' })).handoff({ ttlMs: 600_000 });
    const holder = start('handoff-race.mjs', ['holder', root, JSON.stringify([ticket]), 'other', String(30 * STALE_MS)], { pidNamespace: true });
    await nextJson(holder);
    const claimer = sweeper(root, 'claimer');
    const started = performance.now();
    while (performance.now() - started < 3 * STALE_MS) {
      await expect(claimer.claim(ticket)).rejects.toMatchObject({ code: 'ERR_TEMPFILE_ALREADY_CLAIMED' });
      await sleep(250);
    }
    await kill(holder);
    let taken: Awaited<ReturnType<TempFileManager['claim']>> | undefined;
    while (!taken && performance.now() - started < 10 * STALE_MS) taken = await claimer.claim(ticket).catch(() => sleep(250).then(() => undefined));
    expect(taken?.size).toBe(14); // taken over once the holder stopped beating
    await taken?.consume();
    await Promise.all([producer.close(), claimer.close()]);
  });

  itNeeds(ELSEWHERE_IN_TIME)('a one-shot sweep reports another machine\'s session as not yet judged; --watch judges it with a second look', async () => {
    const root = freshRoot();
    const { running, report } = await owner(root, 'wait', 'other', { pidNamespace: true, clockOffset: '-1h' });
    const once = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--stale-ms', String(STALE_MS), '--json']);
    expect(JSON.parse(once.stdout)).toMatchObject({ sessionsRemoved: 0, unjudgedSessionsSkipped: 1 });
    const watched = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--stale-ms', String(STALE_MS), '--watch', '--json']);
    expect(JSON.parse(watched.stdout)).toMatchObject({ sessionsRemoved: 0, liveSessionsSkipped: 1 });
    await kill(running);
    const afterKill = await run(cli, ['sweep', '--root', root, '--grace-ms', '0', '--stale-ms', String(STALE_MS), '--watch', '--json']);
    expect(JSON.parse(afterKill.stdout)).toMatchObject({ sessionsRemoved: 1 });
    expect(absent(report)).toBe(true);
  });
});

describe('a dead owner of this machine is removed at the next sweep', () => {
  it('kill -9 mid-write, then a restart at once with default thresholds: the partial file is gone within seconds', async () => {
    const root = freshRoot();
    const { running, report } = await owner(root, 'write', 'host-a');
    expect(report.files.some((f) => f.endsWith('.part') && fs.statSync(f).size >= 4 * 2 ** 20)).toBe(true);
    await kill(running);
    expect(Date.now() - fs.statSync(`${report.session}.lock`).mtimeMs).toBeLessThan(30_000); // fresh, and young
    const started = performance.now();
    const restarted = start('owner-child.mjs', [root, 'restart']);
    await nextJson(restarted);
    // Its lock is fresh: only the dead pid tells, at once; the lock would not be stale for the
    // default staleMs (30 s), nor past the default graceMs (90 s). Waited for up to 25 s, which a
    // busy machine needs, not the 30 s a judgement by the lock's age would.
    while (!absent(report) && performance.now() - started < 25_000) await sleep(20);
    expect(absent(report)).toBe(true);
    await kill(restarted);
  });

  it('a reused pid: a session named after a live pid and thread with another start time is an orphan, its lock fresh', async () => {
    const root = freshRoot();
    const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
    // This very process's pid and thread, as a process that ran before it under the same pid would name them.
    const session = path.join(root, sessionName({ host: 'host-a', pid: process.pid, thread: process.pid, start: `${machineId()}.1`, created: Date.now(), random: '0123456789abcdef' }));
    fs.mkdirSync(session, { mode: 0o700 });
    fs.writeFileSync(path.join(session, 'left-behind'), 'x');
    fs.mkdirSync(sessionLockPath(session));
    const report = await mgr.sweep();
    expect(report).toMatchObject({ sessionsRemoved: 1, errors: [] });
    expect(fs.existsSync(session)).toBe(false);
    await mgr.close();
  });

  it('a long-running manager sweeps every sweepIntervalMs, without a call; close() stops it', async () => {
    const root = freshRoot();
    const mgr = new TempFileManager({ root, staleMs: STALE_MS, graceMs: 60_000, sweepOnStart: false, sweepIntervalMs: 1000, exitHook: false });
    mgr.file(); // this manager is alive and keeps its own files
    for (let i = 0; i < 2; i++) {
      const { running, report } = await owner(root, 'wait', 'host-a');
      await kill(running);
      const started = performance.now();
      // Nothing but the interval's sweep removes it (graceMs is a minute); a busy machine makes the
      // timer late, so the wait is long and not a measure of the interval.
      while (!absent(report) && performance.now() - started < 25_000) await sleep(20);
      expect(absent(report), `orphan ${i}`).toBe(true);
    }
    await mgr.close();
    const { running, report } = await owner(root, 'wait', 'host-a');
    await kill(running);
    await sleep(2500);
    expect(present(report)).toBe(true);
  });

  it('rejects a sweepIntervalMs below 1000 other than 0', () => {
    expect(() => new TempFileManager({ root: freshRoot(), sweepIntervalMs: 10 })).toThrow(/sweepIntervalMs/);
    expect(() => new TempFileManager({ root: freshRoot(), sweepIntervalMs: 0, sweepOnStart: false }).closeSync()).not.toThrow();
  });
});

describe('worker threads', () => {
  interface ThreadReport extends ChildReport {
    held: string;
    ticket: HandoffTicket;
  }

  it.each(['return', 'exit', 'throw', 'terminate'])(
    'a thread that ends by %s loses its files and their descriptors at once, and its lease is taken over at once, while the process lives',
    async (mode) => {
      const running = start('thread-child.mjs', [freshRoot(), mode]);
      const report = await nextJson<ThreadReport>(running);
      const after = await nextJson<{ filesGoneAfterMs: number; reclaimed: string; openOnRoot: number }>(running);
      expect(after.filesGoneAfterMs, 'gone while the process lives, with no sweep (fixtures/thread-child.mjs)').toBeGreaterThanOrEqual(0);
      expect(after.openOnRoot).toBe(0); // the cut-off write's descriptor too
      expect(after.reclaimed).toBe('handed off');
      expect(absent(report)).toBe(true);
      expect((await running.ended).code).toBe(0);
    },
  );

  it('process exit with a thread still writing: nothing of the thread is left, and its lease is taken over at once', async () => {
    const root = freshRoot();
    const running = start('thread-child.mjs', [root, 'process-exit']);
    const report = await nextJson<ThreadReport>(running);
    expect((await running.ended).code).toBe(0);
    expect(absent(report)).toBe(true);
    for (const file of report.files) expect(fs.existsSync(file)).toBe(false);
    const mgr = new TempFileManager({ root, staleMs: STALE_MS, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const claimed = await mgr.claim(report.ticket);
    expect(fs.readFileSync(claimed.path, 'utf8')).toBe('handed off');
    await claimed.consume();
    await mgr.close();
    expect(fs.readdirSync(root).filter((n) => n !== 'handoff' && n !== '.tempfile-manager')).toEqual([]);
  });

  it("a terminated worker's session under a root of its own is removed, though the worker said so before the main thread listened", async () => {
    const running = start('thread-roots.mjs', [freshRoot(), freshRoot()]);
    const report = await nextJson<{ session: string; goneAfterMs: number }>(running);
    expect(report.goneAfterMs, `${report.session} left after the worker ended (fixtures/thread-roots.mjs)`).toBeGreaterThanOrEqual(0);
    expect((await running.ended).code).toBe(0);
  });
});

itNeeds(FAKETIME)('libfaketime is where the tests expect it', () => {
  expect(fs.existsSync(LIBFAKETIME)).toBe(true);
});
