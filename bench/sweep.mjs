// Sweeping orphans: `mgr.sweep()` against `rm -rf`, `fs.promises.rm()` and `fs.rmSync()` over
// the same tree of orphaned sessions, timed in a child each (sweep-worker.mjs) with that
// child's longest event-loop stall.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TempFileManager } from '../dist/index.js';
import { deadOwnerFor, formatInt, formatRatio, plantDeadSessions, runChild, sampleInterleaved, stats, table, targetsTable, watchIdleLoop } from './lib.mjs';
import { flush } from './settle.mjs';

const WORKER = fileURLToPath(new URL('./sweep-worker.mjs', import.meta.url));

/** The host id of the planted sessions, and of the sweeping manager. */
export const HOST_ID = 'bench-host';

const params = {
  rounds: 3,
  sessions: 4,
  dirsPerSession: 25,
  filesPerDir: 1000,
  fileBytes: 1024,
  maxStallMs: 20,
};
const FILES = params.sessions * params.dirsPerSession * params.filesPerDir;
const DIRS = params.sessions * params.dirsPerSession;

const CONTENDERS = [
  { id: 'rm-rf', name: '`rm -rf` (spawned; the stall is of the waiting process)', baseline: true },
  { id: 'sweep', name: '`mgr.sweep()` (graceMs 0)' },
  { id: 'rm-promises', name: '`fs.promises.rm(dir, { recursive: true, force: true })`' },
  { id: 'rm-sync', name: '`fs.rmSync(dir, { recursive: true, force: true })`' },
];

export const METHOD = `- Each sample removes a tree of ${formatInt(FILES)} files of ${params.fileBytes} bytes in
  ${DIRS} directories: ${params.sessions} orphaned session directories, correctly named
  (\`<host>_<pid>_<start>_<created>_<random>\`, pid 4194303 and a start token of another boot,
  so no process owns them, created an hour ago), each with a stale lock directory (mtime an hour
  ago) and ${params.dirsPerSession} directories of ${params.filesPerDir} files.
- Every tree is planted with raw \`fs\` before the first sample, then \`sync\`: creating files
  after a mass delete runs in ext4's slow-create mode (see settle.mjs and the create + dispose
  method), so no sample's tree is made after another sample's deletes.
- Each sample runs in a child of its own (\`bench/sweep-worker.mjs\`): it times the removal
  alone (the manager is constructed before the clock starts) and watches its own event loop
  with \`perf_hooks.monitorEventLoopDelay({ resolution: 1 })\`, enabled just before and read
  5 ms after the removal, so a blocking call is recorded whole. The stall is the histogram's
  max. \`rm -rf\` runs in a process of its own (\`child_process.spawn\`): its row's stall is of
  the waiting Node process, for reference.
- Beside every sample, an idle sibling (\`bench/idle-watcher.mjs\`), a Node process that does
  nothing but watch its own event loop the same way, runs from before the sample's child starts
  to after it ends: its longest stall, in the last column, is what the machine alone did to a
  loop doing nothing during that sample.
- The longest stalls of \`mgr.sweep()\` are V8 garbage-collection pauses (scavenges of the
  walk's promises and \`Stats\`): a few ms on a quiet machine. Earlier runs, made while other
  processes kept both cores busy, saw tens to hundreds of ms, and as much in a process that only
  waited on \`rm -rf\`: read the stall column together with the idle sibling's.
- The contenders are interleaved round-robin, each round starting with the next one, with
  \`sync\` and a 150 ms settle before each sample. The sweep's report must count every file and
  byte with no error, and every contender must leave nothing behind.
- The root file system here is ext4 mounted with \`discard\` and no journal: unlinking a file
  that holds data discards its block synchronously (a device round trip each), so removal rates
  are bound by the device, and removers that keep several unlinks in flight go faster.`;

/** Plants one tree of orphaned sessions of `owner` at `dir` with raw fs. */
function plant(dir, index, owner) {
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, '.tempfile-manager'), 'tempfile-manager root\nformat 1\n');
  const data = Buffer.alloc(params.fileBytes, 0x61);
  plantDeadSessions(dir, { owner, sessions: params.sessions, dirs: params.dirsPerSession, files: params.filesPerDir, data, index });
}

async function runSweep(root) {
  const count = params.rounds * CONTENDERS.length;
  const planting = Date.now();
  const trees = Array.from({ length: count }, (_, i) => path.join(root, `tree-${i}`));
  const owner = deadOwnerFor(TempFileManager, root, HOST_ID);
  trees.forEach((tree, index) => plant(tree, index, owner));
  const plantSeconds = (Date.now() - planting) / 1000;
  console.log(`Planted ${count} trees of ${formatInt(FILES)} files in ${plantSeconds.toFixed(0)} s.`);
  const args = (c) => [c.id, trees.pop(), String(FILES), String(FILES * params.fileBytes)];
  const results = await sampleInterleaved(CONTENDERS, {
    rounds: params.rounds,
    before: flush,
    sample: async (c) => {
      const idle = await watchIdleLoop();
      const sample = await runChild(WORKER, args(c));
      return { ...sample, idleStallMs: await idle.stop() };
    },
  });
  const measured = results.map((r) => ({
    ...r,
    time: stats(r.samples, 'seconds'),
    stall: stats(r.samples, 'stallMs'),
    idleStall: stats(r.samples, 'idleStallMs'),
  }));
  console.log(`\nSweep ${formatInt(FILES)} orphaned files\n\n${sweepTable(measured)}`);
  return { results: measured, plantSeconds };
}

function sweepTable(results) {
  const base = results.find((r) => r.baseline);
  const rows = results.map((r) => [
    r.name,
    r.time.median.toFixed(2),
    `${r.time.min.toFixed(2)} – ${r.time.max.toFixed(2)}`,
    formatInt(FILES / r.time.median),
    formatRatio(base.time.median / r.time.median),
    formatInt(r.stall.median),
    formatInt(r.stall.max),
    `${formatInt(r.idleStall.median)} / ${formatInt(r.idleStall.max)}`,
  ]);
  return table(
    ['Contender', 's (median)', 'min – max', 'files/s', 'speed vs rm -rf', 'longest stall, ms (median)', 'max', 'idle sibling (median / max)'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function sweepTargets(results) {
  const sweep = results.find((r) => r.id === 'sweep');
  const rmRf = results.find((r) => r.id === 'rm-rf');
  const speed = rmRf.time.median / sweep.time.median;
  return targetsTable([
    ['`mgr.sweep()` ≥ 1.5x the speed of `rm -rf`', formatRatio(speed), speed >= 1.5],
    [`\`mgr.sweep()\` stalls the event loop ≤ ${params.maxStallMs} ms (worst sample)`, `${formatInt(sweep.stall.max)} ms`, sweep.stall.max <= params.maxStallMs],
  ]);
}

function renderSweep({ results, plantSeconds }, info) {
  return [
    `### Sweep (Node ${process.version})`,
    '',
    `${info} ${params.rounds} samples per contender, each removing ${formatInt(FILES)} files of ${params.fileBytes} bytes ` +
      `in ${DIRS} directories (${params.rounds * CONTENDERS.length} trees planted in ${plantSeconds.toFixed(0)} s).`,
    '',
    `#### Removing ${formatInt(FILES)} orphaned files`,
    '',
    sweepTable(results),
    '',
    '#### Targets',
    '',
    sweepTargets(results),
    '',
  ].join('\n');
}

/** The suite, as run.mjs drives it. */
export const sweepSuite = {
  id: 'sweep',
  title: 'Sweep',
  method: METHOD,
  run: async (root, info) => renderSweep(await runSweep(root), info),
};
