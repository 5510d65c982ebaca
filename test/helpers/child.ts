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

/** Spawns a node fixture with piped stdio. */
export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningChild {
  const child = spawn(process.execPath, [fixture(script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
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
