import fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export const fixture = (name: string) => path.join(import.meta.dirname, '../fixtures', name);

export interface ChildReport {
  session: string;
  files: string[];
  pid: number;
}

export interface RunningChild {
  child: ChildProcess;
  /** Lines the child printed on stdout, as they arrive. */
  lines: AsyncIterator<string>;
  /** Resolves with how the child ended. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Where a child runs, when not simply beside the test. */
export interface Elsewhere {
  /**
   * In a PID namespace of its own (`unshare --pid --mount-proc`): another machine, as far as pids
   * go. It plays another host: `TEMPFILE_MANAGER_SHARED_ROOT=1`, so it holds no live signal, and
   * an observer here judges it by its heartbeat, as one on another host would.
   */
  readonly pidNamespace?: boolean;
  /** In a PID namespace of its own that still sees this one's `/proc` (`unshare --pid`, no `--mount-proc`). */
  readonly pidNamespaceWithOurProc?: boolean;
  /** With its clock set apart (libfaketime), e.g. `'+1h'` or `'-1h'`. */
  readonly clockOffset?: string;
}

/** The node process inside a `unshare --fork` wrapper (`startChild(..., { pidNamespace: true })`), by its pid as this process sees it. */
export function innerPid(unsharePid: number): number {
  const children = fs.readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(' ');
  return Number(children[0]);
}

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** Spawns a node fixture with piped stdio; `where` puts it in its own PID namespace or clock. */
export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}, where: Elsewhere = {}): RunningChild {
  const command = [process.execPath, fixture(script), ...args];
  if (where.pidNamespace) command.unshift('unshare', '--pid', '--fork', '--mount-proc', '--kill-child');
  if (where.pidNamespaceWithOurProc) command.unshift('unshare', '--pid', '--fork', '--kill-child');
  const clock = where.clockOffset ? { FAKETIME: where.clockOffset, LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_RESET: '1' } : {};
  const anotherHost = where.pidNamespace ? { TEMPFILE_MANAGER_SHARED_ROOT: '1' } : {};
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...anotherHost, ...env, ...clock },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, lines, ended };
}

/** The next stdout line, parsed as JSON. */
export async function nextJson<T>(running: RunningChild): Promise<T> {
  const { value, done } = await running.lines.next();
  if (done) throw new Error(`the child ended before reporting: ${(await running.ended).stderr}`);
  return JSON.parse(value) as T;
}

/** What a child that ran to its end printed. */
export interface Finished {
  readonly stdout: string;
  readonly stderr: string;
}

/** How to run a child to its end: `timeoutMs` is the test's deadline for it, kept below the test's own timeout. */
export interface RunOptions {
  readonly timeoutMs: number;
  /** The child, as a message names it, e.g. `'the leak child'`. */
  readonly what: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly maxBuffer?: number;
}

const STDERR_TAIL_LINES = 30;

/** The last lines of what a child wrote on stderr, for a message. */
export function stderrTail(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const tail = lines.slice(-STDERR_TAIL_LINES).join('\n');
  if (tail === '') return 'its stderr is empty';
  return `its stderr ${lines.length > STDERR_TAIL_LINES ? `ends (last ${STDERR_TAIL_LINES} lines)` : 'says'}:\n${tail}`;
}

/**
 * Why a child did not end well, in words: killed by the test's own deadline (not a failure of
 * the code under test, but a machine too slow for the deadline), killed by a signal, or its exit
 * code; with its stderr's tail. Undefined when it exited 0.
 */
export function endFailure(what: string, end: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; stderr: string; timeoutMs: number }): string | undefined {
  if (end.timedOut) return `${what} was killed after ${Math.round(end.timeoutMs / 1000)} s by the test's timeout (it was still running); ${stderrTail(end.stderr)}`;
  if (end.signal !== null) return `${what} was killed by ${end.signal}; ${stderrTail(end.stderr)}`;
  if (end.code !== 0) return `${what} exited with code ${end.code}; ${stderrTail(end.stderr)}`;
  return undefined;
}

/** Runs `command` to its end; rejects, saying why (see {@link endFailure}), unless it exits 0. */
export function runToEnd(command: string, args: readonly string[], options: RunOptions): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: { ...process.env, ...options.env } });
    const maxBuffer = options.maxBuffer ?? 64 * 1024 * 1024;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < maxBuffer) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-maxBuffer);
    });
    const deadline = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(deadline);
      reject(new Error(`${options.what} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      const failure = endFailure(options.what, { code, signal, timedOut, stderr, timeoutMs: options.timeoutMs });
      if (failure === undefined) resolve({ stdout, stderr });
      else reject(new Error(failure));
    });
  });
}

/** {@link runToEnd}, blocking: for a test that does nothing else meanwhile. */
export function runToEndSync(command: string, args: readonly string[], options: RunOptions): Finished {
  const run = spawnSync(command, args, {
    encoding: 'utf8',
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
  });
  if (run.error && (run.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw new Error(`${options.what} could not run: ${run.error.message}`);
  const timedOut = (run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  const failure = endFailure(options.what, { code: run.status, signal: run.signal, timedOut, stderr: run.stderr ?? '', timeoutMs: options.timeoutMs });
  if (failure !== undefined) throw new Error(failure);
  return { stdout: run.stdout, stderr: run.stderr };
}
