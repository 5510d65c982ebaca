import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { fixture, nextJson, startChild, type RunningChild } from '../helpers/child.js';
import { cannotRun, needs, PID_NAMESPACE } from '../helpers/privileges.js';
import { freshRoot, scratchDir } from '../helpers/roots.js';
import { scaledRounds } from '../helpers/scale.js';
// @ts-expect-error: a plain script of the project, without types
import { linuxPath, WINE_CACHE, wineEnv, wineMajors, winePrefixReady, windowsFileUrl, windowsNodeExe, windowsPath } from '../../scripts/wine.mjs';
import { pool } from '../helpers/pool.js';

// The win32 cells of the liveness matrix: {process starts} × {with /proc, without} × {Linux, win32
// under Wine}. test/process/liveness-starts.test.ts holds the Linux cells; these run Windows' own
// node.exe under Wine (process.platform is 'win32', Windows' libuv runs): win32 code paths under
// Wine, not Windows. Windows has no /proc, so win32 has only the "without /proc" column: a win32
// owner's name carries its pid and its start time, no thread, boot id or PID namespace, and every
// observer judges it by its heartbeat, which its beat thread must beat while its event loop is
// blocked.
//
// Each cell is an owner started one of the ways the Linux matrix uses, all of which Windows has (a
// file, -e, --input-type=module --eval, a loader by --import, a bundle, a permission policy, a
// worker thread), that holds a file and a claim and busy-loops for BLOCK_MS. All along, two
// sweepers sweep the root and try to take every claim; each judges the owner by its heartbeat
// alone, by one of the two rules a win32 owner can meet (judgeOwner in src/owner/liveness.ts):
//
// - a Linux node in another PID namespace, over the same directory (a Linux directory, drive Z: to
//   node.exe): the win32 owner's token gives it nothing to check, so it watches the heartbeat on
//   its own monotonic clock (rule 3) and takes the owner for dead once it saw it unchanged for
//   staleMs. This is an observer on another host or in a container. Its namespace of its own, as
//   in the Linux matrix, keeps it from judging any pid at all.
// - a second node.exe in the same Wine prefix (one wineserver: it sees the owners' Windows pids)
//   with the owners' host id: a neighbour on the same Windows machine. It sees the owner's pid
//   alive, which proves nothing on Windows (a crashed process's pid is soon another's), so the
//   heartbeat decides against the clock both share (rule 2): dead once older than staleMs at two
//   looks 2 s apart. The quickest to condemn a stopped heartbeat, and the path a Windows machine
//   takes on its own.
//
// Nothing may be lost: the file, the session and the claim stay the owner's, and neither sweeper
// removes a session or takes a claim. And the heartbeat must be the beat thread's: while the
// owner's event loop is blocked (its own timer runs nothing), this test reads the session lock's
// and the held file's mtime from Linux, and each must change at least once per staleMs.
//
// Mutation: make the beat thread's start() in src/owner/beat-thread.ts return at once when
// process.platform === 'win32' (and rebuild): every cell loses its session and its claim, and its
// lock's and held file's mtimes stand still during the block.
//
// Run by the Wine step of .ci/run with TFM_WINE_NODES=22,24,26 (npm run test:wine fetches what it
// needs; the default suite leaves test/wine out: vitest.wine.config.ts). Outside CI, it skips and
// says why where Wine, node.exe or the Wine prefix is missing.

const HOST = 'matrix-host-win32';
const STALE_MS = 3_000;
/** How long each owner blocks: 60 s, scaled down by TEMPFILE_MANAGER_TEST_SCALE, never below 4 staleMs. */
const BLOCK_MS = scaledRounds(60, (4 * STALE_MS) / 1000) * 1000;
/** How many owners block at once, on two cores beside the sweepers: 21 cells in two waves (the Linux matrix blocks 7 at once). */
const AT_ONCE = 11;
/** How often the test reads the heartbeats' mtimes during a block, and how long before its end it stops counting. */
const SAMPLE_MS = 250;
const BLOCK_END_MARGIN_MS = 2_000;
const MAJORS: readonly string[] = wineMajors();
const REPO = path.join(import.meta.dirname, '..', '..');
const OWNER = fixture('blocked-owner.mjs');
/** Where the owners' code is read from: the repository, and its node_modules where that is a link elsewhere. */
const CODE = [...new Set([REPO, fs.realpathSync(path.join(REPO, 'node_modules'))])].filter(
  (dir, _index, all) => !all.some((other) => other !== dir && dir.startsWith(other + path.sep)),
);

interface Start {
  readonly name: string;
  /** node.exe's arguments that start the owner, given the root and the bundle as node.exe names them. */
  readonly args: (major: number, root: string, bundle: string) => string[];
}

const STARTS: readonly Start[] = [
  { name: 'a file', args: () => [windowsPath(OWNER)] },
  { name: '-e (a CommonJS script)', args: () => ['-e', `import(${JSON.stringify(windowsFileUrl(OWNER))})`] },
  { name: '--input-type=module --eval', args: () => ['--input-type=module', '--eval', `await import(${JSON.stringify(windowsFileUrl(OWNER))})`] },
  { name: 'a loader by --import', args: () => ['--import', windowsFileUrl(fixture('pass-through-loader.mjs')), windowsPath(OWNER)] },
  { name: 'a bundle', args: (_major, _root, bundle) => [bundle] },
  {
    // What the library needs on win32: reads of its code and of the root (no /proc there), writes
    // to the root, and worker threads (the beat thread).
    name: 'a --permission policy (reads of the code and the root, writes to the root alone, worker threads)',
    args: (major, root) => [
      major >= 22 ? '--permission' : '--experimental-permission',
      ...CODE.map((dir) => `--allow-fs-read=${windowsPath(dir)}\\*`),
      `--allow-fs-read=${root}\\*`,
      `--allow-fs-write=${root}\\*`,
      '--allow-worker',
      windowsPath(OWNER),
    ],
  },
  { name: 'a worker thread', args: () => [windowsPath(fixture('blocked-owner-in-worker.mjs'))] },
];

interface Cell {
  readonly major: string;
  readonly start: Start;
}

const cellName = (cell: Cell) => `node.exe ${cell.major}, ${cell.start.name}, win32 (no /proc)`;

// What is still running when a test ends (a failed one) is SIGKILLed: unshare ignores SIGTERM, and
// `wine` runs node.exe in its own process, which SIGKILL ends at once.
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Why this test cannot run here: Wine, unshare and root, node.exe of each major, the Wine prefix. */
function needsWine(ctx: TestContext): void {
  needs(ctx, { ...PID_NAMESPACE, command: ['unshare', 'wine'], package: 'util-linux wine64 wine' });
  const lacking = MAJORS.filter((major) => !fs.existsSync(windowsNodeExe(major))).map((major) => `node.exe ${major}`);
  if (!winePrefixReady()) lacking.push('a Wine prefix that reports Windows 10');
  if (lacking.length > 0) cannotRun(ctx, `needs ${lacking.join(' and ')} in ${WINE_CACHE} (node scripts/wine.mjs fetch ${MAJORS.join(' ')} makes them)`);
}

/** A process under Wine whose standard output and error go to files: node.exe cannot write to a Unix pipe. */
interface WineProcess {
  readonly child: ChildProcess;
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every whole line of its standard output so far that is a JSON object. */
  lines(): Record<string, unknown>[];
  /** Its standard error so far. */
  stderr(): string;
}

function startUnderWine(major: string, args: readonly string[], env: NodeJS.ProcessEnv, work: string, name: string): WineProcess {
  const out = path.join(work, `${name}.out`);
  const err = path.join(work, `${name}.err`);
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  const child = spawn('wine', [windowsNodeExe(major), ...args], { cwd: REPO, env: { ...wineEnv(), ...env }, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  children.push(child);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const lines = () => {
    const text = fs.readFileSync(out, 'utf8');
    return text
      .slice(0, text.lastIndexOf('\n') + 1) // a line still being written is read once it is whole
      .split(/\r?\n/)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  };
  return { child, ended, lines, stderr: () => fs.readFileSync(err, 'utf8') };
}

/** Waits for the first line of `running` that `wanted` accepts; undefined if it ends first. */
async function lineOf(running: WineProcess, wanted: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> {
  let ended = false;
  void running.ended.then(() => (ended = true));
  for (;;) {
    const over = ended; // read before the file: a line written just before the end is still found
    const line = running.lines().find(wanted);
    if (line !== undefined) return line;
    if (over) return undefined;
    await sleep(100);
  }
}

/** The Linux sweeper in a PID namespace of its own (tickets on its stdin, its report on its stdout). */
function linuxSweeper(root: string): RunningChild {
  const sweeping = startChild('hostile-sweeper.mjs', [root, String(STALE_MS), HOST], { TEMPFILE_MANAGER_NO_PROC: '' }, { pidNamespace: true });
  children.push(sweeping.child);
  return sweeping;
}

/** The node.exe sweeper: tickets as files in `tickets`, stopped by the file `stop`. */
function windowsSweeper(major: string, root: string, tickets: string, stop: string, work: string): WineProcess {
  const script = windowsPath(path.join(REPO, 'test', 'portable', 'fixtures', 'sweep-and-claim.mjs'));
  return startUnderWine(major, [script, windowsPath(root), windowsPath(tickets), windowsPath(stop), String(STALE_MS)], { TEMPFILE_MANAGER_HOST_ID: HOST }, work, 'sweeper');
}

interface SweeperReport {
  sweeps: number;
  sessionsRemoved: number;
  taken: string[];
  failures: string[];
}

interface OwnerOutcome {
  readonly cell: string;
  readonly intact?: boolean;
  readonly leaseHeld?: boolean | string;
  /** How often the lock's and the held file's mtime changed while the event loop was blocked, and over how long. */
  readonly beats?: { lock: number; held: number; overMs: number };
  /** The lines of its standard error that are the library's warnings (a beat thread that failed, or a beat in it). */
  readonly warnings?: string[];
  readonly failure?: string;
  /** The held file's device and inode when the owner was ready, and after its block. */
  readonly heldIds?: readonly [unknown, unknown];
}

/** The mtime of `file` now, or undefined when it cannot be read. */
function mtimeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Runs one cell's owner to its end: hands its ticket to the sweepers once it holds its claim, then
 * counts its heartbeats' changes during the block.
 */
async function runOwner(cell: Cell, index: number, root: string, bundle: string, work: string, handTicket: (ticket: unknown) => void): Promise<OwnerOutcome> {
  const name = cellName(cell);
  const env = { BLOCKED_OWNER: JSON.stringify({ root: windowsPath(root), blockMs: BLOCK_MS, hostId: HOST }) };
  const owner = startUnderWine(cell.major, cell.start.args(Number(cell.major), windowsPath(root), windowsPath(bundle)), env, work, `owner-${index}`);
  const ready = await lineOf(owner, (line) => line.ready === true);
  if (ready === undefined) {
    const end = await owner.ended;
    return { cell: name, failure: `ended with ${end.signal ?? end.code} before it was ready; stderr: ${owner.stderr().slice(-2000)}` };
  }
  const blockedUntil = Date.now() + BLOCK_MS - BLOCK_END_MARGIN_MS; // it blocks from just before the line was seen
  const startedAt = Date.now();
  handTicket(ready.ticket);
  const lock = `${linuxPath(ready.session as string)}.lock`;
  const held = linuxPath(ready.held as string);
  const seen = { lock: new Set<number>(), held: new Set<number>() };
  let ended = false;
  void owner.ended.then(() => (ended = true));
  while (!ended && Date.now() < blockedUntil) {
    for (const [kind, file] of [['lock', lock], ['held', held]] as const) {
      const mtime = mtimeOf(file);
      if (mtime !== undefined) seen[kind].add(mtime);
    }
    await sleep(SAMPLE_MS);
  }
  const beats = { lock: Math.max(0, seen.lock.size - 1), held: Math.max(0, seen.held.size - 1), overMs: Date.now() - startedAt };
  const last = await lineOf(owner, (line) => 'intact' in line);
  const end = await owner.ended;
  if (end.code !== 0 || last === undefined) return { cell: name, beats, failure: `ended with ${end.signal ?? end.code}; stderr: ${owner.stderr().slice(-2000)}` };
  const warnings = owner.stderr().split(/\r?\n/).filter((line) => /TempFileWarning|WARN_TEMPFILE/.test(line));
  return { cell: name, intact: last.intact as boolean, leaseHeld: last.leaseHeld as boolean | string, beats, warnings, heldIds: [ready.heldId, last.heldId] };
}


/** The owner fixture as one bundled file (esbuild): the library's code inlined, as an application's bundler leaves it. */
async function bundled(dir: string): Promise<string> {
  const out = path.join(dir, 'owner-bundle.mjs');
  // A plain bundle, as a user makes one: no banner (nothing the library inlines calls require()).
  await build({ entryPoints: [OWNER], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'silent' });
  return out;
}

const CELLS: readonly Cell[] = MAJORS.flatMap((major) => STARTS.map((start) => ({ major, start })));

describe('win32 under Wine: an owner whose event loop is blocked loses nothing, however its process was started', () => {
  it(
    `every start on node.exe ${MAJORS.join(', ')} (win32 has no /proc): blocked ${BLOCK_MS / 1000} s against a Linux sweeper in another PID namespace and a node.exe sweeper of the same host`,
    async (ctx) => {
      needsWine(ctx);
      const work = scratchDir();
      const root = freshRoot();
      fs.mkdirSync(root, { mode: 0o700 });
      const tickets = path.join(work, 'tickets');
      fs.mkdirSync(tickets);
      const stop = path.join(work, 'stop');
      const bundle = await bundled(work);

      const elsewhere = linuxSweeper(root);
      const neighbour = windowsSweeper(MAJORS[0]!, root, tickets, stop, work);
      await nextJson(elsewhere);
      expect(await lineOf(neighbour, (line) => line.ready === true), `the node.exe sweeper did not start: ${neighbour.stderr().slice(-2000)}`).toBeDefined();

      let handed = 0;
      const handTicket = (ticket: unknown) => {
        elsewhere.child.stdin!.write(`${JSON.stringify(ticket)}\n`);
        // Whole or not there: the node.exe sweeper reads the directory all along, and a file being written can be empty.
        const name = `${handed++}.json`;
        fs.writeFileSync(path.join(work, `${name}.part`), JSON.stringify(ticket));
        fs.renameSync(path.join(work, `${name}.part`), path.join(tickets, name));
      };
      const outcomes = await pool(CELLS.map((cell, index) => () => runOwner(cell, index, root, bundle, work, handTicket)), AT_ONCE);

      elsewhere.child.stdin!.end();
      fs.writeFileSync(stop, '');
      const elsewhereReport = await nextJson<SweeperReport>(elsewhere);
      const neighbourEnd = await neighbour.ended;
      const neighbourReport = neighbour.lines().at(-1) as unknown as SweeperReport | undefined;
      expect(neighbourEnd.code, `the node.exe sweeper: ${neighbour.stderr().slice(-2000)}`).toBe(0);

      for (const { cell, beats } of outcomes) {
        if (beats) console.log(`${cell}: during ${(beats.overMs / 1000).toFixed(1)} s of its block, its lock beat ${beats.lock} times, its held file ${beats.held}`);
      }
      // Every broken promise at once, with what the sweepers did: a failure shows all it needs.
      const sweepers = { elsewhere: elsewhereReport, neighbour: neighbourReport };
      const broken = {
        lost: outcomes.filter((outcome) => outcome.intact !== true || outcome.leaseHeld !== true),
        // Never silent, and nothing to be silent about: no cell's beat thread failed, nor a beat in it.
        warned: outcomes.filter((outcome) => (outcome.warnings ?? []).length > 0),
        // The beat thread ran: both heartbeats changed at least once per staleMs while nothing else could change them.
        stopped: outcomes.filter(({ beats = { lock: 0, held: 0, overMs: 0 } }) => {
          const least = Math.max(2, Math.floor(beats.overMs / STALE_MS));
          return beats.lock < least || beats.held < least;
        }),
        sweepersThatActed: Object.entries(sweepers)
          .filter(([, report]) => !report || report.sessionsRemoved !== 0 || report.taken.length > 0 || report.failures.length > 0 || report.sweeps <= 1)
          .map(([name]) => name),
      };
      expect(broken, `the sweepers' reports: ${JSON.stringify(sweepers)}`).toEqual({ lost: [], warned: [], stopped: [], sweepersThatActed: [] });
    },
    // Waves of cells, each a block and the owners' start and end under Wine on a loaded machine,
    // and the sweepers' start.
    Math.ceil(CELLS.length / AT_ONCE) * (BLOCK_MS + 120_000) + 120_000,
  );
});
