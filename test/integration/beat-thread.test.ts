import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixture, runToEnd } from '../helpers/child.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';
import { beatThread } from '../../src/owner/beat-thread.js';
import { heldAt, lockAt } from '../helpers/beat-names.js';

// The beat thread refreshes an owner's heartbeat while its event loop is blocked, where there is
// no /proc. It opens what it beats by path, so a name swapped for a symlink, a hard link or a FIFO
// must be left untouched, as by the main thread's beat (heartbeat.ts).

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LONG_AGO = new Date('2001-01-01T00:00:00Z');
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function aged(file: string): string {
  fs.utimesSync(file, LONG_AGO, LONG_AGO);
  return file;
}

/** Waits until `dir`'s mtime was moved twice by the beat thread: the targets added before it were beaten meanwhile. */
async function beatenTwice(dir: string): Promise<void> {
  let seen = fs.statSync(dir).mtimeMs;
  for (let changes = 0; changes < 2; ) {
    await sleep(100);
    const now = fs.statSync(dir).mtimeMs;
    if (now !== seen) changes += 1;
    seen = now;
  }
}

describe('the beat thread', () => {
  // Required once, as a process whose owners hold no live signal requires it; kept from then on.
  beforeAll(() => beatThread().require('the beat thread\'s own tests'));
  it('beats its targets, and never what was planted at a target\'s name', async () => {
    const dir = scratchDir();
    const victimFile = path.join(dir, 'victim.txt');
    fs.writeFileSync(victimFile, 'outside');
    aged(victimFile);
    const victimDir = path.join(dir, 'victim-dir');
    fs.mkdirSync(victimDir);
    aged(victimDir);
    const fifoAsLease = heldAt(dir, '.fifo');
    const fifoAsSession = lockAt(dir);
    execFileSync('mkfifo', [fifoAsLease]);
    execFileSync('mkfifo', [fifoAsSession]);
    const planted = {
      fifoAsLease,
      fifoAsSession,
      symlinkAsLease: heldAt(dir, '.symlink'),
      symlinkAsSession: lockAt(dir),
      hardLinkAsLease: heldAt(dir, '.hardlink'),
      fileAsSession: lockAt(dir),
    };
    fs.symlinkSync(victimFile, planted.symlinkAsLease);
    fs.symlinkSync(victimDir, planted.symlinkAsSession);
    fs.linkSync(victimFile, planted.hardLinkAsLease);
    fs.writeFileSync(planted.fileAsSession, 'not a lock');
    aged(planted.fileAsSession);
    // The FIFO first: an open that blocked on it would stop every later beat.
    stops.push(beatThread().add(planted.fifoAsLease, 'lease'), beatThread().add(planted.fifoAsSession, 'session'));
    stops.push(beatThread().add(planted.symlinkAsLease, 'lease'), beatThread().add(planted.symlinkAsSession, 'session'));
    stops.push(beatThread().add(planted.hardLinkAsLease, 'lease'), beatThread().add(planted.fileAsSession, 'session'));
    const held = heldAt(dir, '.bin');
    fs.writeFileSync(held, 'held');
    aged(held);
    stops.push(beatThread().add(held, 'lease'));
    const lock = lockAt(dir);
    fs.mkdirSync(lock);
    aged(lock);
    stops.push(beatThread().add(lock, 'session'));
    await beatenTwice(lock);
    expect(fs.statSync(held).mtime).not.toEqual(LONG_AGO); // a lease's held file is beaten too
    for (const untouched of [victimFile, victimDir, planted.fileAsSession]) expect(fs.statSync(untouched).mtime).toEqual(LONG_AGO);
  });

  it('is kept once required, idle when nothing is left to beat: never started again per target', async () => {
    const dir = scratchDir();
    const lock = lockAt(dir);
    fs.mkdirSync(lock);
    const starts = beatThread().starts;
    const stop = beatThread().add(lock, 'session');
    expect(beatThread()).toMatchObject({ running: true, targets: 1 });
    await beatenTwice(lock);
    stop();
    stop(); // idempotent
    expect(beatThread()).toMatchObject({ running: true, targets: 0, starts });
  });
});

describe('one beat thread per process', () => {
  const run = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
    const done = await runToEnd(process.execPath, [fixture('beat-thread-child.mjs'), freshRoot(), ...args], { env, timeoutMs: 60_000, what: 'the beat-thread child' });
    const [open, closed] = done.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    return { open: open!, closed };
  };

  it('without /proc: one thread for the sessions of the ESM and the CJS build, idle after close(); the process ends of itself', async () => {
    const { open, closed } = await run({ TEMPFILE_MANAGER_NO_PROC: '1' });
    expect(open.open).toEqual({ running: true, targets: 2 });
    expect(closed?.closed).toEqual({ running: true, targets: 0 });
  });

  it('without /proc: a process that closes nothing still ends of itself, and its exit hook removes the sessions', async () => {
    const { open, closed } = await run({ TEMPFILE_MANAGER_NO_PROC: '1' }, 'leave-open');
    expect(open.open).toEqual({ running: true, targets: 2 });
    expect(closed).toBeUndefined();
    for (const session of open.sessions as string[]) {
      expect(fs.existsSync(session)).toBe(false);
      expect(fs.existsSync(`${session}.lock`)).toBe(false);
    }
  });

  it.runIf(process.platform === 'linux')('with /proc on a local root: no thread (the live signal speaks for the owners to a sweeper in another PID namespace)', async () => {
    const { open, closed } = await run({ TEMPFILE_MANAGER_NO_PROC: '' });
    expect(open.open).toEqual({ running: false, targets: 2 });
    expect(closed?.closed).toEqual({ running: false, targets: 0 });
  });

  it.runIf(process.platform === 'linux')('with /proc on a root other hosts share (TEMPFILE_MANAGER_SHARED_ROOT=1): one thread, as without /proc', async () => {
    const { open, closed } = await run({ TEMPFILE_MANAGER_NO_PROC: '', TEMPFILE_MANAGER_SHARED_ROOT: '1' });
    expect(open.open).toEqual({ running: true, targets: 2 });
    expect(closed?.closed).toEqual({ running: true, targets: 0 });
  });
});

describe('the beat thread runs whatever the process was started with, and never fails silently', () => {
  const report = async (args: readonly string[], env: NodeJS.ProcessEnv = {}) => {
    const config = JSON.stringify({ root: freshRoot(), waitMs: 3_000 });
    // The thread is what is tested: its owners hold no live signal (a root other hosts share).
    const done = await runToEnd(process.execPath, args, { env: { BEAT_REPORT: config, DEBUG: '', TEMPFILE_MANAGER_SHARED_ROOT: '1', ...env }, timeoutMs: 60_000, what: 'the beat-thread report child' });
    return JSON.parse(done.stdout.trim().split('\n').at(-1)!) as { starts: number; running: boolean; failure: string | null; warnings: { name: string; code: string; message: string }[] };
  };
  const reporter = pathToFileURL(fixture('beat-thread-report.mjs')).href;

  it.for(['', '1'])('started by node --input-type=module --eval (TEMPFILE_MANAGER_NO_PROC=%j): the thread runs, started once', async (noProc) => {
    const got = await report(['--input-type=module', '--eval', `await import(${JSON.stringify(reporter)})`], { TEMPFILE_MANAGER_NO_PROC: noProc });
    expect(got).toEqual({ starts: 1, running: true, failure: null, warnings: [] });
  });

  it.for([
    ['a -r preload', ['-r', fixture('threads-refused.cjs'), fixture('beat-thread-report.mjs')], {}],
    ['NODE_OPTIONS', [fixture('beat-thread-report.mjs')], { NODE_OPTIONS: `--require ${fixture('threads-refused.cjs')}` }],
  ] as const)('a thread that cannot run (%s refuses worker threads): started again after longer and longer waits, never in a loop, and a process warning says why', async ([, args, env]) => {
    const got = await report(args, env);
    // Waits of 0.1, 0.2, 0.4, 0.8, 1.6 s: at most 6 starts in 3 s however fast the machine (a
    // slow one makes fewer); a restart at once would make hundreds.
    expect(got.starts).toBeGreaterThanOrEqual(1);
    expect(got.starts).toBeLessThanOrEqual(6);
    expect(got.failure).toContain('this preload refuses worker threads');
    expect(got.warnings).toHaveLength(1); // once per cause, not once per start
    expect(got.warnings[0]).toMatchObject({ name: 'TempFileWarning', code: 'WARN_TEMPFILE_BEAT_THREAD' });
    expect(got.warnings[0]!.message).toContain('this preload refuses worker threads');
    expect(got.warnings[0]!.message).toContain('--allow-worker');
  });
});
