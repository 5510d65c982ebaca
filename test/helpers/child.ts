import { spawn, type ChildProcess } from 'node:child_process';
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
  /** In a PID namespace of its own (`unshare --pid --mount-proc`): another machine, as far as pids go. */
  readonly pidNamespace?: boolean;
  /** In a PID namespace of its own that still sees this one's `/proc` (`unshare --pid`, no `--mount-proc`). */
  readonly pidNamespaceWithOurProc?: boolean;
  /** With its clock set apart (libfaketime), e.g. `'+1h'` or `'-1h'`. */
  readonly clockOffset?: string;
}

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** Spawns a node fixture with piped stdio; `where` puts it in its own PID namespace or clock. */
export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}, where: Elsewhere = {}): RunningChild {
  const command = [process.execPath, fixture(script), ...args];
  if (where.pidNamespace) command.unshift('unshare', '--pid', '--fork', '--mount-proc', '--kill-child');
  if (where.pidNamespaceWithOurProc) command.unshift('unshare', '--pid', '--fork', '--kill-child');
  const clock = where.clockOffset ? { FAKETIME: where.clockOffset, LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_RESET: '1' } : {};
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env, ...clock },
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
