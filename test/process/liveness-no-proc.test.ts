import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, LIBFAKETIME, nextJson, runToEnd, startChild, type ChildReport, type RunningChild } from '../helpers/child.js';
import { FAKETIME, itNeeds } from '../helpers/privileges.js';
import { freshRoot, markedRoot } from '../helpers/roots.js';
import { entryName, formatOwnerToken, handoffDirOf, heldName, holderOf, sessionLockPath, sessionName } from '../../src/base/layout.js';
import { TempFileManager } from '../../src/index.js';

// Without /proc (macOS, Windows; here TEMPFILE_MANAGER_NO_PROC=1 in every process that judges or
// owns), a pid tells nothing about whose process holds it: the number of a crashed owner may be
// handed to any other process. An owner of this host is then alive while its pid exists AND its
// heartbeat, beaten off the main thread, is fresh by this host's clock; a blocked event loop does
// not stop that beat.

const STALE_MS = 2000;
const HOST = 'no-proc-host';
const NO_PROC = { TEMPFILE_MANAGER_NO_PROC: '1', TEMPFILE_MANAGER_HOST_ID: HOST };
const cli = path.join(import.meta.dirname, '../../dist/cli.js');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const spawned: ChildProcess[] = [];
afterEach(() => {
  for (const child of spawned.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function start(script: string, args: string[]): RunningChild {
  const running = startChild(script, args, NO_PROC);
  spawned.push(running.child);
  return running;
}

/** A live process that has nothing to do with the root: it holds the number a dead owner had. */
function unrelatedProcess(): ChildProcess {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  spawned.push(child);
  if (child.pid === undefined) throw new Error('sleep did not start');
  return child;
}

/**
 * A session as an owner of this host without /proc names it, whose owner is gone and whose pid
 * `pid` now belongs to another process: a directory with a file and its lock, beaten once (now)
 * and never again.
 */
function sessionOfReusedPid(root: string, pid: number): { dir: string; file: string } {
  const created = Date.now() - 3_600_000;
  const dir = path.join(root, sessionName({ host: HOST, pid, start: String(created), created, random: 'feedc0ffee000001' }));
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.mkdirSync(sessionLockPath(dir), { mode: 0o700 });
  const file = path.join(dir, 'left-by-the-crash.bin');
  fs.writeFileSync(file, 'orphan');
  return { dir, file };
}

/** Waits until the lock was last beaten more than `ms` ago by this host's clock (its ctime cannot be set back). */
async function untilStale(lock: string, ms: number): Promise<void> {
  while (Date.now() - fs.statSync(lock).ctimeMs <= ms) await sleep(200);
}

/** The clock of a process whose wall clock was stepped an hour forward (an NTP step, a VM resumed). */
const HOUR_AHEAD = { FAKETIME: '+1h', LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_RESET: '1' };

async function cliSweep(root: string, ...extra: string[]): Promise<Record<string, unknown>> {
  return cliSweepWith({}, root, ...extra);
}

async function cliSweepWith(env: NodeJS.ProcessEnv, root: string, ...extra: string[]): Promise<Record<string, unknown>> {
  const args = [cli, 'sweep', '--root', root, '--stale-ms', String(STALE_MS), '--json', ...extra];
  const done = await runToEnd(process.execPath, args, { env: { ...NO_PROC, ...env }, timeoutMs: 60_000, what: 'the CLI sweep' });
  return JSON.parse(done.stdout) as Record<string, unknown>;
}

/** A sweeper process without /proc that sweeps again and again until told to stop. */
function sweeper(root: string): RunningChild {
  return start('sweep-until.mjs', [root]);
}

async function stopSweeper(running: RunningChild): Promise<{ sweeps: number; failures: string[]; errors: unknown[] }> {
  running.child.stdin!.end();
  const report = await nextJson<{ sweeps: number; failures: string[]; errors: unknown[] }>(running);
  await running.ended;
  return report;
}

describe('without /proc, a dead owner whose pid was reused is swept', () => {
  it('by a one-shot CLI sweep, once its heartbeat is older than staleMs', async () => {
    const root = markedRoot(freshRoot());
    const holder = unrelatedProcess();
    const session = sessionOfReusedPid(root, holder.pid!);
    await untilStale(sessionLockPath(session.dir), STALE_MS);
    expect(holder.exitCode).toBeNull(); // the pid still exists: the process holding it is alive
    const report = await cliSweep(root);
    expect(report).toMatchObject({ sessionsRemoved: 1, liveSessionsSkipped: 0 });
    expect(fs.existsSync(session.dir)).toBe(false);
    expect(fs.existsSync(sessionLockPath(session.dir))).toBe(false);
    expect(holder.exitCode).toBeNull();
  });

  it('by a long-running sweeper that saw it beaten just now, within staleMs and a second look', async () => {
    const root = markedRoot(freshRoot());
    const holder = unrelatedProcess();
    const session = sessionOfReusedPid(root, holder.pid!);
    const sweeping = sweeper(root);
    await nextJson(sweeping);
    const started = performance.now();
    // Generous: the bound is staleMs plus a second look, the wait only rules out "kept forever".
    // The directory goes first, then the lock.
    const gone = () => !fs.existsSync(session.dir) && !fs.existsSync(sessionLockPath(session.dir));
    while (!gone() && performance.now() - started < 60_000) await sleep(200);
    expect(fs.existsSync(session.dir)).toBe(false);
    expect(fs.existsSync(sessionLockPath(session.dir))).toBe(false);
    expect(await stopSweeper(sweeping)).toMatchObject({ failures: [], errors: [] });
  });
});

describe('without /proc, a claim whose holder\'s pid was reused is taken over', () => {
  it('once the held file\'s heartbeat stopped, by a claimer that keeps trying', async () => {
    const root = freshRoot();
    const producer = new TempFileManager({ root, hostId: 'producer', sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
    const ticket = await (await producer.write('held by the dead', { suffix: '.bin' })).handoff({ ttlMs: 600_000 });
    const holding = start('handoff-race.mjs', ['holder', root, JSON.stringify([ticket]), HOST, String(STALE_MS)]);
    await nextJson(holding);
    holding.child.kill('SIGKILL');
    await holding.ended;
    // The dead holder's name, its pid given to a live unrelated process (the rename beats it once, now).
    const entry = path.join(root, 'handoff', fs.readdirSync(path.join(root, 'handoff')).find((name) => name.startsWith('entry_'))!);
    const held = fs.readdirSync(entry).find((name) => holderOf(name) !== undefined)!;
    const holder = unrelatedProcess();
    const reused = heldName(formatOwnerToken({ ...holderOf(held)!, pid: holder.pid! }), '.bin');
    fs.renameSync(path.join(entry, held), path.join(entry, reused));
    const claim = await runToEnd(process.execPath, [fixture('claim-until.mjs'), root, JSON.stringify(ticket), HOST, String(STALE_MS), '60000'], {
      env: NO_PROC,
      timeoutMs: 90_000,
      what: 'the claimer',
    });
    expect(JSON.parse(claim.stdout)).toMatchObject({ won: true });
    expect(holder.exitCode).toBeNull();
    await producer.close();
  });
});

describe('without /proc, an expired entry whose holder\'s pid was reused is swept', () => {
  it('by a one-shot CLI sweep, once the held file\'s heartbeat is older than staleMs', async () => {
    const root = markedRoot(freshRoot());
    const holder = unrelatedProcess();
    const entry = path.join(handoffDirOf(root), entryName('ab'.repeat(16), Date.now() - 60_000));
    fs.mkdirSync(entry, { recursive: true, mode: 0o700 });
    const created = Date.now() - 3_600_000;
    const owner = formatOwnerToken({ host: HOST, pid: holder.pid!, start: String(created), created, random: 'feedc0ffee000002' });
    const held = path.join(entry, heldName(owner, '.bin'));
    fs.writeFileSync(held, 'held by the dead');
    await untilStale(held, STALE_MS);
    expect(await cliSweep(root)).toMatchObject({ handoffEntriesRemoved: 1, claimedEntriesSkipped: 0 });
    expect(fs.existsSync(entry)).toBe(false);
    expect(holder.exitCode).toBeNull();
  });
});

describe('without /proc, a live owner is never swept', () => {
  it('while its event loop is blocked past staleMs, with sweepers looking all along', async () => {
    const root = freshRoot();
    const owner = start('owner-child.mjs', [root, 'block', String(STALE_MS), HOST]);
    const report = await nextJson<ChildReport>(owner);
    const present = () => fs.existsSync(report.session) && report.files.every((f) => fs.existsSync(f));
    const sweeping = sweeper(root);
    await nextJson(sweeping);
    // The owner's event loop stays blocked until told: first for well past staleMs by this
    // host's clock, with a sweeper sweeping all along, then through two one-shot sweeps.
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 3 * STALE_MS) {
      expect(present()).toBe(true);
      await sleep(250);
    }
    expect(await cliSweep(root)).toMatchObject({ sessionsRemoved: 0, liveSessionsSkipped: 1 });
    expect(await cliSweep(root, '--watch', '--grace-ms', '0')).toMatchObject({ sessionsRemoved: 0 });
    expect(present()).toBe(true);
    const swept = await stopSweeper(sweeping);
    expect(swept.sweeps).toBeGreaterThan(1);
    owner.child.stdin!.write('wake\n');
    expect(await nextJson<{ intact: boolean }>(owner)).toEqual({ intact: true });
    expect((await owner.ended).code).toBe(0);
  });

  it('a blocked owner killed outright is swept: its pid is gone', async () => {
    const root = freshRoot();
    const owner = start('owner-child.mjs', [root, 'block', String(STALE_MS), HOST]);
    const report = await nextJson<ChildReport>(owner);
    owner.child.kill('SIGKILL');
    await owner.ended;
    expect(await cliSweep(root)).toMatchObject({ sessionsRemoved: 1 });
    expect(fs.existsSync(report.session)).toBe(false);
  });
});

describe('without /proc, a clock stepped forward condemns nobody alive', () => {
  itNeeds(FAKETIME)('a sweeper whose clock is an hour ahead finds every heartbeat an hour old, and keeps the live owner all the same', async () => {
    const root = freshRoot();
    const owner = start('owner-child.mjs', [root, 'block', String(STALE_MS), HOST]);
    const report = await nextJson<ChildReport>(owner);
    for (let round = 0; round < 3; round++) {
      expect(await cliSweepWith(HOUR_AHEAD, root)).toMatchObject({ sessionsRemoved: 0, liveSessionsSkipped: 1 });
    }
    expect(fs.existsSync(report.session) && report.files.every((f) => fs.existsSync(f))).toBe(true);
    owner.child.stdin!.write('wake\n');
    expect(await nextJson<{ intact: boolean }>(owner)).toEqual({ intact: true });
    expect((await owner.ended).code).toBe(0);
  });

  itNeeds(FAKETIME)('the same sweeper still removes the session of a reused pid', async () => {
    const root = markedRoot(freshRoot());
    const holder = unrelatedProcess();
    const session = sessionOfReusedPid(root, holder.pid!);
    await untilStale(sessionLockPath(session.dir), STALE_MS);
    expect(await cliSweepWith(HOUR_AHEAD, root)).toMatchObject({ sessionsRemoved: 1 });
    expect(fs.existsSync(session.dir)).toBe(false);
  });
});
