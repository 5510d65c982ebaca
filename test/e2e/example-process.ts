// Runs the examples' scripts as child processes for the end-to-end tests, and cleans up after
// each test: the children are killed and the scratch roots removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach } from 'vitest';

const examples = path.join(import.meta.dirname, '../../examples');
export const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export function scratchRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-e2e-workers-'));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

export interface Running {
  child: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** What it printed so far, stdout and stderr. */
  output(): string;
  /** Resolves with the first group of the next line (from now on) that matches. */
  waitFor(pattern: RegExp): Promise<string>;
}

export function run(script: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [path.join(examples, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let output = '';
  child.stderr!.on('data', (data: Buffer) => (output += data.toString()));
  const waiters: { pattern: RegExp; resolve: (group: string) => void }[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `${line}\n`;
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(line);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match[1] ?? match[0]);
      }
    }
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    exited,
    output: () => output,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        void exited.then(() => reject(new Error(`${script} exited before printing ${pattern}:\n${output}`)));
      }),
  };
}

export async function until(what: string, test: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !test(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
