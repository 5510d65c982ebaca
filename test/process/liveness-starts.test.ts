import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterEach, describe, expect } from 'vitest';
import { fixture, nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { itNeeds, PID_NAMESPACE } from '../helpers/privileges.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';
import { scaledRounds } from '../helpers/scale.js';
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { pool } from '../helpers/pool.js';

// Liveness has no silent failure mode: whatever starts the process, an owner whose event loop is
// blocked keeps its files and its claims. Each cell of the matrix is an owner started one way, with
// /proc or without it (TEMPFILE_MANAGER_NO_PROC=1, the macOS and Windows paths), that holds a file
// and a claim and then busy-loops; all along, a sweeper in another PID namespace (a container of
// the same host: it judges every owner here by its heartbeat) sweeps the root and tries to take
// every claim, and a sweeper without /proc in this namespace does the same (it judges an owner
// without /proc by its pid and its heartbeat against this host's clock). Nothing may be lost.

const HOST = 'matrix-host';
const STALE_MS = 3_000;
/** How long each owner blocks: 60 s, scaled down by TEMPFILE_MANAGER_TEST_SCALE, never below 4 staleMs. */
const BLOCK_MS = scaledRounds(60, (4 * STALE_MS) / 1000) * 1000;
/** How many owners block at once: the matrix's cells share two cores with the sweepers. */
const AT_ONCE = 7;
const nodeMajor = Number(process.versions.node.split('.')[0]);
const PERMISSION_FLAG = nodeMajor >= 22 ? '--permission' : '--experimental-permission';
const OWNER = fixture('blocked-owner.mjs');

interface Start {
  readonly name: string;
  /** The node arguments that start the owner, for a root. */
  readonly args: (root: string, bundle: string) => string[];
}

const STARTS: readonly Start[] = [
  { name: 'a file', args: () => [OWNER] },
  { name: '-e (a CommonJS script)', args: () => ['-e', `import(${JSON.stringify(pathToFileURL(OWNER).href)})`] },
  { name: '--input-type=module --eval', args: () => ['--input-type=module', '--eval', `await import(${JSON.stringify(pathToFileURL(OWNER).href)})`] },
  { name: 'a loader by --import', args: () => ['--import', pathToFileURL(fixture('pass-through-loader.mjs')).href, OWNER] },
  { name: 'a bundle', args: (_root, bundle) => [bundle] },
  {
    name: 'a --permission policy (reads everywhere, writes to the root alone, worker threads)',
    args: (root) => [PERMISSION_FLAG, '--allow-fs-read=*', `--allow-fs-write=${root}`, '--allow-worker', OWNER],
  },
  { name: 'a worker thread', args: () => [fixture('blocked-owner-in-worker.mjs')] },
];

interface Cell {
  readonly start: Start;
  readonly noProc: boolean;
}

const CELLS: readonly Cell[] = STARTS.flatMap((start) => [false, true].map((noProc) => ({ start, noProc })));
const cellName = (cell: Cell) => `${cell.start.name}, ${cell.noProc ? 'without /proc' : 'with /proc'}`;

// Children still running when the test ends (a failed one) are SIGKILLed: unshare ignores SIGTERM.
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface SweeperReport {
  sweeps: number;
  sessionsRemoved: number;
  taken: string[];
  failures: string[];
}

/** A hostile sweeper: in another PID namespace (with its own /proc), or here without /proc. */
function sweeper(root: string, where: 'other-namespace' | 'here-without-proc'): RunningChild {
  const child =
    where === 'other-namespace'
      ? startChild('hostile-sweeper.mjs', [root, String(STALE_MS), HOST], { TEMPFILE_MANAGER_NO_PROC: '' }, { pidNamespace: true })
      : startChild('hostile-sweeper.mjs', [root, String(STALE_MS), HOST], { TEMPFILE_MANAGER_NO_PROC: '1' });
  children.push(child.child);
  return child;
}

async function stop(sweeping: RunningChild): Promise<SweeperReport> {
  sweeping.child.stdin!.end();
  const report = await nextJson<SweeperReport>(sweeping);
  await sweeping.ended;
  return report;
}

interface OwnerOutcome {
  readonly cell: string;
  readonly intact?: boolean;
  readonly leaseHeld?: boolean | string;
  readonly failure?: string;
}

/** Runs one cell's owner to its end, handing its ticket to the sweepers once it holds its claim. */
function runOwner(cell: Cell, root: string, bundle: string, sweepers: readonly RunningChild[]): Promise<OwnerOutcome> {
  const name = cellName(cell);
  const env = {
    ...process.env,
    TEMPFILE_MANAGER_NO_PROC: cell.noProc ? '1' : '',
    BLOCKED_OWNER: JSON.stringify({ root, blockMs: BLOCK_MS, hostId: HOST }),
  };
  const child = spawn(process.execPath, cell.start.args(root, bundle), { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    lines.push(parsed);
    if (parsed.ready) for (const sweeping of sweepers) sweeping.child.stdin!.write(`${JSON.stringify(parsed.ticket)}\n`);
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const last = lines.find((line) => 'intact' in line) as { intact: boolean; leaseHeld: boolean | string } | undefined;
      if (code !== 0 || last === undefined) resolve({ cell: name, failure: `ended with ${signal ?? code}; stderr: ${stderr.slice(-2000)}` });
      else resolve({ cell: name, intact: last.intact, leaseHeld: last.leaseHeld });
    });
  });
}


/** The owner fixture as one bundled file (esbuild): the library's code inlined, as an application's bundler leaves it. */
async function bundled(): Promise<string> {
  const out = path.join(scratchDir(), 'owner-bundle.mjs');
  // A plain bundle, as a user makes one: no banner (nothing the library inlines calls require()).
  await build({ entryPoints: [OWNER], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'silent' });
  return out;
}

describe('an owner whose event loop is blocked loses nothing, however its process was started', () => {
  itNeeds(PID_NAMESPACE)(
    `every start × {with /proc, without}: blocked ${BLOCK_MS / 1000} s against sweepers in another PID namespace and without /proc`,
    async () => {
      const root = freshRoot();
      fs.mkdirSync(root, { mode: 0o700 });
      const bundle = await bundled();
      const sweepers = [sweeper(root, 'other-namespace'), sweeper(root, 'here-without-proc')];
      await Promise.all(sweepers.map((sweeping) => nextJson(sweeping)));
      const outcomes = await pool(CELLS.map((cell) => () => runOwner(cell, root, bundle, sweepers)), AT_ONCE);
      const [elsewhere, here] = await Promise.all(sweepers.map(stop));
      const lost = outcomes.filter((outcome) => outcome.intact !== true || outcome.leaseHeld !== true);
      expect(lost).toEqual([]);
      for (const report of [elsewhere!, here!]) {
        expect(report).toMatchObject({ sessionsRemoved: 0, taken: [], failures: [] });
        expect(report.sweeps).toBeGreaterThan(1);
      }
    },
    // Two waves of cells, each a block and the owners' start and end on a loaded machine.
    Math.ceil(CELLS.length / AT_ONCE) * (BLOCK_MS + 90_000) + 60_000,
  );
});
