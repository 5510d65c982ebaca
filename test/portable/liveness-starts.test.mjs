// An owner whose event loop is blocked keeps its files and its claim, however its process was
// started, against a sweeper of this host that sweeps and tries to take the claim all along. Run
// without /proc (scripts/portable.mjs --no-proc on Node, scripts/runtimes.mjs on Bun and Deno, and
// Windows' node.exe under Wine), a sweeper judges a live owner of this host by its pid and its
// heartbeat, which the beat thread beats while the event loop is blocked; with /proc, by /proc. (test/process/liveness-starts.test.ts runs the same starts with /proc
// and against a sweeper in another PID namespace.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { here, scratch, start } from './helpers.mjs';

const STALE_MS = 5_000;
const BLOCK_MS = 3 * STALE_MS;
const owner = path.join(here, 'fixtures', 'blocked-owner.mjs');
const ownerUrl = JSON.stringify(pathToFileURL(owner).href);
const nodeMajor = Number(process.versions.node.split('.')[0]);

/**
 * The ways this runtime starts a process. Bun takes Node's command line; Deno translates only part
 * of it (its `node -e` cannot import, `--input-type` and `--import` are unknown to it), so there
 * the same starts are Deno's own. Node's permission model is Node's alone.
 */
function startsHere(root) {
  const common = { 'a file': [owner], 'a worker thread': [path.join(here, 'fixtures', 'blocked-owner-in-worker.mjs')] };
  if (globalThis.Deno) {
    const everyAllowFlag = ['read', 'write', 'net', 'env', 'sys', 'run', 'ffi', 'import'].map((name) => `--allow-${name}`);
    return { ...common, 'deno eval': ['eval', `await import(${ownerUrl})`], 'every --allow-* flag': ['run', ...everyAllowFlag, owner] };
  }
  const nodeLine = {
    ...common,
    '-e': ['-e', `import(${ownerUrl})`],
    '--input-type=module --eval': ['--input-type=module', '--eval', `await import(${ownerUrl})`],
    'a loader by --import': ['--import', pathToFileURL(path.join(here, '..', 'fixtures', 'pass-through-loader.mjs')).href, owner],
  };
  if (globalThis.Bun) return nodeLine;
  return { ...nodeLine, 'a permission policy': [nodeMajor >= 22 ? '--permission' : '--experimental-permission', '--allow-fs-read=*', `--allow-fs-write=${path.join(root, '*')}`, '--allow-worker', owner] };
}

test('an owner blocked for three staleMs loses nothing, however its process was started (a file, -e, a loader, a worker thread, a permission policy: those of this runtime)', async () => {
  const parent = scratch(after, 'starts');
  const root = path.join(parent, 'root');
  const tickets = path.join(parent, 'tickets');
  fs.mkdirSync(tickets);
  const stop = path.join(parent, 'stop');
  const starts = startsHere(root);
  fs.mkdirSync(root, { mode: 0o700 });
  const sweeper = start(path.join(here, 'fixtures', 'sweep-and-claim.mjs'), [root, tickets, stop, String(STALE_MS)]);
  await sweeper.firstLine();
  const outcomes = await Promise.all(
    Object.entries(starts).map(async ([name, args], index) => {
      const env = { BLOCKED_OWNER: JSON.stringify({ root, blockMs: BLOCK_MS }) };
      const child = startNode(args, env);
      const ready = await child.firstLine();
      // Whole or not there: the sweeper reads the directory all along, and a file being written can be empty.
      const part = path.join(parent, `${index}.json.part`);
      fs.writeFileSync(part, JSON.stringify(ready.ticket));
      fs.renameSync(part, path.join(tickets, `${index}.json`));
      const end = await child.ended;
      const last = end.stdout.trim().split('\n').at(-1);
      return { name, code: end.code, last: last && JSON.parse(last), stderr: end.code === 0 ? '' : end.stderr };
    }),
  );
  fs.writeFileSync(stop, '');
  const swept = JSON.parse((await sweeper.ended).stdout.trim().split('\n').at(-1));
  assert.deepEqual(outcomes.filter((o) => o.code !== 0 || o.last?.intact !== true || o.last?.leaseHeld !== true), []);
  assert.deepEqual({ sessionsRemoved: swept.sessionsRemoved, taken: swept.taken, failures: swept.failures }, { sessionsRemoved: 0, taken: [], failures: [] });
  assert.ok(swept.sweeps > 1);
});

/** `node ...args` (start() runs a script: here the arguments before it are node's own). */
function startNode(args, env) {
  const [first, ...rest] = args;
  return start(first, rest, env);
}
