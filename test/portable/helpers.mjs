// What the portable suite's files share: a fresh directory per file, a child node run with a
// bounded wait, and the signal relay that lets a suite under Wine send a Ctrl+C.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const win32 = process.platform === 'win32';
export const here = path.dirname(fileURLToPath(import.meta.url));
export const distBin = path.join(here, '..', '..', 'dist', 'cli.js');
const child = path.join(here, 'fixtures', 'child.mjs');

/** A bound on every wait: far above what a slow machine (or Wine) takes, only there to end a hang. */
export const WAIT_MS = 120_000;

/** A fresh directory under the system's temporary directory, removed by `after`. */
export function scratch(after, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tfm-portable-${name}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

/**
 * `spawn()` of this Node, tried again when it throws UNKNOWN. Under Wine, node.exe's CreateProcess
 * failed that way once while four children started at once (libuv's UV_UNKNOWN): the process
 * never existed, so nothing of what a test checks happened yet. Any other failure is thrown.
 */
function spawnNode(args, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      return spawn(process.execPath, args, options);
    } catch (error) {
      if (error?.code !== 'UNKNOWN' || attempt === 5) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250 * attempt);
    }
  }
}

/** Starts `node <script> ...args` with piped output; `ended` resolves with its code, signal and output. */
export function start(script, args, env = {}) {
  const proc = spawnNode([script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const ended = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${path.basename(script)} ${args.join(' ')} did not end within ${WAIT_MS} ms; stderr: ${stderr}`));
    }, WAIT_MS);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const firstLine = async () => {
    for (;;) {
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n')) return JSON.parse(line);
      const outcome = await Promise.race([ended, new Promise((resolve) => proc.stdout.once('data', () => resolve(undefined)))]);
      if (outcome) throw new Error(`the child ended (${outcome.code ?? outcome.signal}) before its first line; stderr: ${outcome.stderr}`);
    }
  };
  return { proc, ended, firstLine };
}

/** Starts the portable suite's child fixture in `mode`. */
export function startChild(mode, ...args) {
  return start(child, [mode, ...args]);
}

/** Runs the CLI (`dist/cli.js`) to its end. */
export function cli(...args) {
  return start(distBin, args).ended;
}

/** Calls `attempt` until it returns something other than undefined, for at most WAIT_MS. */
export async function eventually(what, attempt) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * How this suite sends a Ctrl+C (SIGINT) to a child, or why it cannot. On POSIX, `kill`. Windows'
 * node.exe has no way: its `process.kill(pid, 'SIGINT')` is TerminateProcess. Under Wine, a
 * Linux SIGINT reaches node.exe as a Ctrl+C, and scripts/portable.mjs --wine relays one: a file
 * `<TFM_PORTABLE_SIGNAL_DIR>/<token>.SIGINT` asks it to send one to the node.exe whose command
 * line holds `token` (a name unique to that child), and becomes `.sent` once it did.
 */
export function ctrlC() {
  if (!win32) return { send: (child) => child.proc.kill('SIGINT') };
  const relay = process.env.TFM_PORTABLE_SIGNAL_DIR;
  if (!relay) return { why: 'Windows gives a program no way to send another a Ctrl+C (process.kill is TerminateProcess); under Wine, scripts/portable.mjs --wine relays one' };
  return {
    send: async (_child, token) => {
      const asked = path.join(relay, `${token}.SIGINT`);
      fs.writeFileSync(asked, '');
      await eventually('the relay to send SIGINT', () => (fs.existsSync(`${asked}.sent`) ? true : undefined));
    },
  };
}
