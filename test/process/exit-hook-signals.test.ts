import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { fixture, nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';
import { until } from '../helpers/wait.js';
import { scaledRounds } from '../helpers/scale.js';

// Enough files that removing them takes the hook a second or more, loaded machine or not.
const FILES = 40_000;
const ATTEMPTS = 3;

interface Report {
  /** The small session, removed first: once it is gone, the hook has started. */
  readonly marker: string;
  /** The large session, removed next. */
  readonly session: string;
}

type Ending = { code: number | null; signal: NodeJS.Signals | null; stderr: string };

/**
 * Sends `first`, waits until the hook has demonstrably started, sends `second`. Returns how the
 * child ended, or undefined when the hook had already finished by the time `second` was sent
 * (then nothing was tested, and the caller tries again).
 */
async function secondSignalDuringHook(root: string, first: NodeJS.Signals, second: NodeJS.Signals): Promise<{ report: Report; ended: Ending } | undefined> {
  const running = startChild('second-signal-child.mjs', [root, String(FILES)]);
  const report = await nextJson<Report>(running);
  running.child.kill(first);
  await until(() => !fs.existsSync(report.marker), 60_000);
  running.child.kill(second);
  const duringRemoval = fs.existsSync(report.session);
  const ended = await running.ended;
  return duringRemoval ? { report, ended } : undefined;
}

describe('a second signal during the exit hook', () => {
  it.for([
    ['SIGINT', 'SIGINT'],
    ['SIGINT', 'SIGTERM'],
    ['SIGTERM', 'SIGHUP'],
  ] as const)('%s, then %s while a large session is removed: the removal ends, and the process dies of the first', { timeout: 300_000 }, async ([first, second]) => {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const root = freshRoot();
      const outcome = await secondSignalDuringHook(root, first, second);
      if (!outcome) {
        console.warn(`the hook was done before ${second} was sent (attempt ${attempt}): trying again`);
        continue;
      }
      expect(outcome.ended).toMatchObject({ code: null, signal: first, stderr: '' });
      expect(fs.existsSync(outcome.report.session)).toBe(false);
      expect(fs.existsSync(`${outcome.report.session}.lock`)).toBe(false);
      expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
      return;
    }
    expect.fail(`in ${ATTEMPTS} attempts, the hook never ran long enough to receive a second signal`);
  });
});

/** Sends `first` and then `second` to the child, `gapMicros` apart (busy-waited: no timer is that fine). */
function backToBack(running: RunningChild, first: NodeJS.Signals, second: NodeJS.Signals, gapMicros: number): void {
  running.child.kill(first);
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() - start < BigInt(gapMicros) * 1000n);
  running.child.kill(second);
}

// Sessions small enough that the hook is often still to start, or just starting, when the second
// signal comes: the second signal lands before, while and after the hook starts, whatever the load.
const SMALL = 2_000;
// Ten rounds at the least: each gap of the ten between the two signals once.
const ROUNDS = scaledRounds(20, 10);

// Which of two signals sent close together a process handles first is the kernel's and libuv's
// choice (the delivering threads race), not the order they were sent in: the hook says which one
// it ran on (its debug log), and the process must die of that one.
const HOOK_RAN_ON = /exit \((SIG[A-Z]+)\): \d+ tasks/

describe('a second signal right after the first', () => {
  it.for([
    ['SIGINT', 'SIGTERM'],
    ['SIGTERM', 'SIGINT'],
  ] as const)('%s, then %s at once: every round, the sessions are removed and the process dies of the signal the hook ran on', { timeout: 300_000 }, async ([first, second]) => {
    const outcomes: string[] = [];
    const expected: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const root = freshRoot();
      const running = startChild('second-signal-child.mjs', [root, String(SMALL)], { DEBUG: 'tempfile-manager:registry', DEBUG_COLORS: 'no' });
      await nextJson<Report>(running);
      backToBack(running, first, second, (round % 10) * 100);
      const ended = await running.ended;
      const ranOn = HOOK_RAN_ON.exec(ended.stderr)?.[1];
      outcomes.push(`round ${round}: hook ran on ${ranOn}, died of ${ended.signal ?? `code ${ended.code}`}, left ${JSON.stringify(fs.readdirSync(root))}`);
      const firstHandled = ranOn === second ? second : first;
      expected.push(`round ${round}: hook ran on ${firstHandled}, died of ${firstHandled}, left ${JSON.stringify(['.tempfile-manager'])}`);
    }
    expect(outcomes).toEqual(expected);
  });
});

describe('an app whose own signal-exit handler was registered before the library', () => {
  it('SIGINT, then SIGTERM while the app handler runs: the sessions are removed, and the process dies of SIGINT', { timeout: 120_000 }, async () => {
    const root = freshRoot();
    const running = startChild('second-signal-child.mjs', [root, '10', 'app-on-exit']);
    const report = await nextJson<Report>(running);
    running.child.kill('SIGINT');
    const { value } = await running.lines.next();
    expect(value).toBe('app handler');
    running.child.kill('SIGTERM');
    running.child.stdin!.end('\n');
    expect(await running.ended).toMatchObject({ code: null, signal: 'SIGINT', stderr: '' });
    expect(fs.existsSync(report.session)).toBe(false);
    expect(fs.readdirSync(root)).toEqual(['.tempfile-manager']);
  });
});

interface SizeLimitOutcome {
  readonly code?: string;
  readonly syscallCode?: string;
  readonly message?: string;
  readonly wrote?: number;
  readonly session: string;
}

/** Runs the size-limit child under `ulimit -f` (in KiB blocks of 1024 bytes, as bash counts them). */
function underFileSizeLimit(root: string, limitKiB: number, bytes: number): Promise<{ lines: string[]; signal: NodeJS.Signals | null; code: number | null }> {
  const child = spawn('bash', ['-c', `ulimit -f ${limitKiB} && exec "$0" "$@"`, process.execPath, fixture('file-size-limit-child.mjs'), root, String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ lines, signal, code })));
}

describe('a write past the file size limit (ulimit -f)', () => {
  it('fails with a typed error (EFBIG), leaves no file, and the process lives on', { timeout: 60_000 }, async () => {
    const root = freshRoot();
    const ended = await underFileSizeLimit(root, 1024, 3 * 1024 * 1024);
    expect(ended).toMatchObject({ signal: null, code: 0 });
    const outcome = JSON.parse(ended.lines[0]!) as SizeLimitOutcome;
    expect(outcome).toMatchObject({ code: 'ERR_TEMPFILE_IO', syscallCode: 'EFBIG' });
    expect(outcome.message).toContain('ulimit -f');
    expect(ended.lines[1]).toBe('still alive');
    expect(fs.existsSync(outcome.session)).toBe(false);
  });
});

describe('SIGQUIT is never held', () => {
  it('a hook that hangs (a removal stuck on a dead mount) is stopped by SIGQUIT, short of SIGKILL', { timeout: 120_000 }, async () => {
    const running = startChild('hung-hook-child.mjs', [freshRoot()]);
    const nextLine = async (): Promise<string | undefined> => (await running.lines.next()).value;
    expect(await nextLine()).toBe('ready');
    running.child.kill('SIGINT');
    expect(await nextLine()).toBe('hook hangs');
    running.child.kill('SIGQUIT');
    const stopped = await Promise.race([running.ended, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000).unref())]);
    if (!stopped) running.child.kill('SIGKILL');
    expect(stopped, 'still running 60 s after SIGQUIT: the hook holds it').toMatchObject({ code: null, signal: 'SIGQUIT' });
  });
});

