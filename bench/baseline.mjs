// This build against the build just before the diagnostics channels (commit eb39cf2), side by side
// in one process: the promise that a library nobody listens to pays nothing for its channels, and
// no operation got slower. Contenders, interleaved round-robin (round r starts at contender r):
// this build with no subscriber; the baseline build; the baseline build again (its spread against
// itself is the noise); this build with a subscriber on every channel (the cost of listening,
// reported, not a target; sampled against this build after every target). Medians of speed and
// of CPU time per operation.
//
//   TFM_BENCH_BASELINE=<the baseline build's dist> node bench/baseline.mjs
//
// Writes bench/results/node-<major>/baseline.md. SAMPLES=n rounds per operation (default 15);
// ONLY=file-sync,handoff runs only those operations (a try-out: printed, not written);
// TMPDIR=/dev/shm puts the roots on tmpfs, where no device's noise hides a cost of the software.
// Without TFM_BENCH_BASELINE it says how to make a baseline build and exits with 3 (skipped).
import dc from 'node:diagnostics_channel';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { deadOwnerOf, formatInt, formatRatio, median, plantDeadSessions, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';
import { flush } from './settle.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const SKIPPED = 3;
const BASELINE_COMMIT = 'eb39cf2';
const SAMPLES = Number(process.env.SAMPLES ?? 15);
const TARGET = 0.95;
const KiB = 1024;
const MiB = 1024 * KiB;
const STREAM_BYTES = 64 * MiB;
const STREAM_CHUNK = 64 * KiB;
const HANDOFF_TTL_MS = 10 * 60 * 1000;
/** The host id of the planted dead sessions, and of the manager that sweeps them. */
const HOST_ID = 'bench-host';
const DEAD = { sessions: 4, dirsPerSession: 10, filesPerDir: 50 };
const DEAD_FILES = DEAD.sessions * DEAD.dirsPerSession * DEAD.filesPerDir;

if (!Number.isInteger(SAMPLES) || SAMPLES < 1) {
  console.error(`SAMPLES is ${JSON.stringify(process.env.SAMPLES)}: give the rounds per operation as a whole number, 1 or more (default 15).`);
  process.exit(2);
}
const baselineDist = findBaseline(process.env.TFM_BENCH_BASELINE);
// In this suite, the build that made the process's first manager came out slower on a small
// write (this build against a copy of itself: 0.65x to 0.81x on the 1 KiB write when it went
// first, 0.97x to 1.13x when the copy did; a bare loop of two copies taking turns does not show
// it, and the cause is not found). So a third copy, this build's CommonJS one, makes the
// process's first manager and writes once, and neither measured build is first.
const firstCopy = createRequire(import.meta.url)('../dist/index.cjs');
const firstRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-first-'));
const firstManager = new firstCopy.TempFileManager({ root: path.join(firstRoot, 'root'), sweepOnStart: false, exitHook: false });
await (await firstManager.write(Buffer.alloc(1))).remove();
const ours = await import('../dist/index.js');
const { CHANNELS, TRACING_CHANNELS } = await import('../dist/diagnostics.js');
const theirs = await import(pathToFileURL(path.join(baselineDist, 'index.js')).href);

/** The baseline's dist directory, checked; without one, how to make it, and exit 3 (skipped). */
function findBaseline(given) {
  const make =
    `Make one: git worktree add ../tfm-baseline ${BASELINE_COMMIT} && ln -s "$PWD/node_modules" ../tfm-baseline/node_modules ` +
    `&& (cd ../tfm-baseline && npm run build), then run TFM_BENCH_BASELINE=../tfm-baseline/dist node bench/baseline.mjs.`;
  if (!given) {
    console.error(`bench/baseline.mjs needs TFM_BENCH_BASELINE, the dist directory of a build of commit ${BASELINE_COMMIT} (the build before the diagnostics channels). ${make}`);
    process.exit(SKIPPED);
  }
  const dist = path.resolve(given);
  if (!fs.existsSync(path.join(dist, 'index.js'))) {
    console.error(`TFM_BENCH_BASELINE is ${JSON.stringify(given)}, which holds no index.js: give the dist directory of a built checkout of ${BASELINE_COMMIT}. ${make}`);
    process.exit(2);
  }
  if (fs.realpathSync(dist) === fs.realpathSync(path.join(here, '..', 'dist'))) {
    console.error(`TFM_BENCH_BASELINE is ${JSON.stringify(given)}, this build's own dist: give another build's. ${make}`);
    process.exit(2);
  }
  return dist;
}

/** The commit the baseline was built at (its checkout's HEAD), or 'unknown'. */
function commitOfBaseline() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.dirname(baselineDist), encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// The subscriber on every channel, on only while the listened contender runs.

/** What the subscriber heard, by channel (a tracing channel by `tracing:<name>`): each operation checks what it must publish. */
const heard = new Map();
const count = (name) => () => heard.set(name, (heard.get(name) ?? 0) + 1);
const traced = (name) => `tracing:${name}`;
const plainListeners = Object.values(CHANNELS).map((name) => [name, count(name)]);
const tracingListeners = Object.values(TRACING_CHANNELS).map((name) => {
  const on = count(traced(name));
  return [dc.tracingChannel(name), { start: on, end: on, asyncStart: on, asyncEnd: on, error: on }];
});

function listen() {
  for (const [name, listener] of plainListeners) dc.subscribe(name, listener);
  for (const [channel, listeners] of tracingListeners) channel.subscribe(listeners);
}

function stopListening() {
  for (const [name, listener] of plainListeners) dc.unsubscribe(name, listener);
  for (const [channel, listeners] of tracingListeners) channel.unsubscribe(listeners);
}

// ---------------------------------------------------------------------------------------------
// Contenders: one manager each, on a root of its own.

const bench = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-baseline-'));
const CONTENDERS = [
  { id: 'this', name: 'this build, no subscriber', lib: ours },
  { id: 'baseline', name: `baseline build (${BASELINE_COMMIT}, before the channels)`, lib: theirs },
  { id: 'again', name: 'baseline build again (the noise)', lib: theirs },
  { id: 'listened', name: 'this build, a subscriber on every channel', lib: ours, listened: true },
].map((c) => {
  const dir = path.join(bench, c.id);
  fs.mkdirSync(dir);
  return { ...c, dir, mgr: new c.lib.TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, exitHook: false }) };
});

// ---------------------------------------------------------------------------------------------
// Operations. `run(c, item)` is one timed operation; `prepare(c, n)`, untimed, makes its n items;
// `hears`: the channels the listened contender must have heard, or it measured no subscriber.

const oneKiB = Buffer.alloc(KiB, 0x61);
const streamChunk = Buffer.alloc(STREAM_CHUNK, 0x62); // never changed: every chunk of every stream

function* streamChunks() {
  for (let sent = 0; sent < STREAM_BYTES; sent += STREAM_CHUNK) yield streamChunk;
}

async function writeAndRemove(c, source, bytes) {
  const file = await c.mgr.write(source);
  if (file.size !== bytes) throw new Error(`${c.id}: write() made ${file.size} bytes of ${bytes}`);
  await file.remove();
}

const OPERATIONS = [
  {
    id: 'file-sync',
    name: '`mgr.file()` + `removeSync()`',
    ops: 400,
    sync: true,
    hears: [CHANNELS.fileCreate, CHANNELS.fileRemove],
    run: (c) => c.mgr.file().removeSync(),
  },
  {
    id: 'file-async',
    name: '`mgr.file()` + `await remove()`',
    ops: 400,
    hears: [CHANNELS.fileCreate, CHANNELS.fileRemove],
    run: (c) => c.mgr.file().remove(),
  },
  {
    id: 'dir',
    name: '`mgr.dir()` + `removeSync()`',
    ops: 200,
    sync: true,
    hears: [CHANNELS.fileCreate, CHANNELS.fileRemove],
    run: (c) => c.mgr.dir().removeSync(),
  },
  {
    id: 'write-1k',
    name: '`mgr.write(1 KiB Buffer)` + `remove()`',
    ops: 200,
    hears: [CHANNELS.fileCreate, CHANNELS.fileRemove, traced(TRACING_CHANNELS.write)],
    run: (c) => writeAndRemove(c, oneKiB, KiB),
  },
  {
    id: 'write-stream',
    name: '`mgr.write(stream of 64 MiB in 64 KiB chunks)` + `remove()`',
    ops: 2,
    unit: 'MB/s',
    perOp: STREAM_BYTES / 1e6,
    settle: true,
    hears: [CHANNELS.fileCreate, CHANNELS.fileRemove, traced(TRACING_CHANNELS.write)],
    run: (c) => writeAndRemove(c, Readable.from(streamChunks()), STREAM_BYTES),
  },
  {
    id: 'handoff',
    name: '`file.handoff()` + `mgr.claim()` + `consume()`, 1 KiB, one manager',
    ops: 100,
    hears: [traced(TRACING_CHANNELS.handoff), traced(TRACING_CHANNELS.claim), CHANNELS.claimConsume],
    prepare: async (c, n) => {
      const files = [];
      for (let i = 0; i < n; i++) files.push(await c.mgr.write(oneKiB));
      return files;
    },
    run: async (c, file) => {
      const ticket = await file.handoff({ ttlMs: HANDOFF_TTL_MS });
      const claimed = await c.mgr.claim(ticket);
      await claimed.consume();
    },
  },
  {
    id: 'sweep',
    name: `\`mgr.sweep()\` of a root with ${formatInt(DEAD_FILES)} dead files`,
    ops: 1,
    unit: 'files/s',
    perOp: DEAD_FILES,
    settle: true,
    hears: [traced(TRACING_CHANNELS.sweep)],
    prepare: (c) => [sweeperOf(c)],
    run: sweepDeadRoot,
    cleanUp: closeDeadRoots,
  },
];

/**
 * The dead roots of every sweep (warm-up included), planted before any operation runs and synced:
 * creating files after a burst of deletes runs in ext4's slow-create mode (bench/settle.mjs), so
 * no tree is made after the other operations' deletes, nor after another sweep's.
 */
const deadRoots = new Map();
function plantDeadRoots() {
  const started = Date.now();
  for (const c of CONTENDERS) {
    c.mgr.file().removeSync(); // its session is made on first use: the dead owners are read from it
    const owner = deadOwner(c);
    deadRoots.set(c.id, Array.from({ length: sweepsOf(c) }, (_, i) => plantDeadRoot(c, owner, i)));
  }
  execFileSync('sync');
  console.log(`Planted ${CONTENDERS.reduce((sum, c) => sum + sweepsOf(c), 0)} roots of ${formatInt(DEAD_FILES)} dead files in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
}

/** The sweeps a contender makes: a warm-up and a sample a round, twice for this build (the targets, then beside the listened one). */
function sweepsOf(c) {
  return (SAMPLES + 1) * (c.id === 'this' ? 2 : 1);
}

/** A manager of the contender's build on its next dead root, made before the clock starts. */
function sweeperOf(c) {
  const root = deadRoots.get(c.id).pop();
  if (!root) throw new Error(`${c.id}: no dead root left to sweep`);
  return new c.lib.TempFileManager({ root, hostId: HOST_ID, graceMs: 0, sweepOnStart: false, exitHook: false });
}

/**
 * A root of dead sessions of `owner` ({@link deadOwner}), planted with raw fs.
 */
function plantDeadRoot(c, owner, index) {
  const root = path.join(c.dir, `dead-${index}`);
  fs.mkdirSync(root, { mode: 0o700 });
  fs.writeFileSync(path.join(root, '.tempfile-manager'), 'tempfile-manager root\nformat 1\n');
  plantDeadSessions(root, { owner, sessions: DEAD.sessions, dirs: DEAD.dirsPerSession, files: DEAD.filesPerDir, data: oneKiB, index });
  return root;
}

/** A dead owner of this machine ({@link deadOwnerOf}), read from the contender's own session. */
function deadOwner(c) {
  const own = fs.readdirSync(path.join(c.dir, 'root')).find((name) => name.startsWith('session_') && !name.endsWith('.lock'));
  return deadOwnerOf(own, HOST_ID);
}

async function sweepDeadRoot(c, mgr) {
  const report = await mgr.sweep();
  const got = { filesRemoved: report.filesRemoved, sessionsRemoved: report.sessionsRemoved, errors: report.errors.length };
  const want = { filesRemoved: DEAD_FILES, sessionsRemoved: DEAD.sessions, errors: 0 };
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${c.id}: sweep report ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
}

/** After a sweep sample: its manager closed, its root (only the manager's own marker left) removed. */
async function closeDeadRoots(managers) {
  for (const mgr of managers) {
    await mgr.close();
    fs.rmSync(mgr.root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling.

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

/** One sample of `n` operations: speed (operations, or the row's unit, per second) and CPU µs per operation. */
async function sampleOps(op, c, n) {
  const items = op.prepare ? await op.prepare(c, n) : Array.from({ length: n });
  if (op.settle) await flush(); // the last sample's dirty pages and deletes are not this one's
  gc(); // the last sample's garbage is not collected in this one's time
  if (c.listened) listen();
  try {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    if (op.sync) for (const item of items) op.run(c, item);
    else for (const item of items) await op.run(c, item);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    return { perSecond: (n * (op.perOp ?? 1)) / seconds, cpuMicros: (used.user + used.system) / n };
  } finally {
    if (c.listened) stopListening();
    await op.cleanUp?.(items);
  }
}

// The contenders of the targets are sampled first, for every operation, with no subscriber ever
// on: this build's code is then compiled as an application that never listens runs it (a
// subscriber on during some of its samples left V8's code of the shared functions slower for
// the others, and this build 0.77x the baseline on file() + removeSync() where it is not).
// The listened contender is sampled after, against this build again.
const TARGETED = CONTENDERS.filter((c) => !c.listened);
const LISTENED_PAIR = CONTENDERS.filter((c) => c.id === 'this' || c.listened);

/** Interleaved samples of `op` by `contenders`, after an untimed warm-up: median speed, its spread and median CPU, by id. */
async function sampleAll(op, contenders) {
  for (const c of contenders) await sampleOps(op, c, Math.max(1, Math.ceil(op.ops / 4)));
  const sampled = await sampleInterleaved(contenders, { rounds: SAMPLES, sample: (c) => sampleOps(op, c, op.ops) });
  return Object.fromEntries(
    sampled.map((r) => {
      const speeds = r.samples.map((s) => s.perSecond);
      return [r.id, { speed: median(speeds), min: Math.min(...speeds), max: Math.max(...speeds), cpu: median(r.samples.map((s) => s.cpuMicros)) }];
    }),
  );
}

async function measure(op) {
  const started = Date.now();
  const by = await sampleAll(op, TARGETED);
  const result = {
    op,
    by,
    speedRatio: by.this.speed / by.baseline.speed,
    cpuRatio: by.baseline.cpu / by.this.cpu,
    noise: Math.abs(1 - by.again.speed / by.baseline.speed),
    cpuNoise: Math.abs(1 - by.baseline.cpu / by.again.cpu),
  };
  console.log(
    `${op.id}: this ${formatInt(by.this.speed)} ${op.unit ?? 'ops/s'} ${formatInt(by.this.cpu)} µs CPU, baseline ${formatInt(by.baseline.speed)} ${formatInt(by.baseline.cpu)} µs, ` +
      `${formatRatio(result.speedRatio)} (CPU ${formatRatio(result.cpuRatio)}), noise ±${percent(result.noise)} (CPU ±${percent(result.cpuNoise)}) (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  return result;
}

/** Adds to `result` the listened contender, sampled against this build once every target is measured. */
async function measureListened(result) {
  const { op } = result;
  heard.clear();
  const pair = await sampleAll(op, LISTENED_PAIR);
  const deaf = op.hears.filter((name) => !heard.get(name));
  if (deaf.length > 0) throw new Error(`${op.id}: the subscriber heard nothing on ${deaf.join(', ')}: the listened contender measured no subscriber`);
  result.by.listened = pair.listened;
  result.listenedRatio = pair.listened.speed / pair.this.speed;
  result.listenedCpuRatio = pair.this.cpu / pair.listened.cpu;
  console.log(`${op.id}, listened: ${formatRatio(result.listenedRatio)} of this build's speed, CPU ${formatRatio(result.listenedCpuRatio)}`);
}

const percent = (x) => `${(x * 100).toFixed(0)}%`;

// ---------------------------------------------------------------------------------------------
// The report.

/** Met: at least the target; within noise: short of it by no more than the baseline's spread against itself. */
function verdict(r) {
  if (r.speedRatio >= TARGET) return true;
  return r.speedRatio >= TARGET - r.noise ? 'no (within noise)' : false;
}

function render(results, baselineCommit) {
  const speedRows = results.flatMap(({ op, by }) =>
    CONTENDERS.map((c, i) => [
      i === 0 ? op.name : '',
      c.name,
      formatInt(by[c.id].speed),
      `${formatInt(by[c.id].min)} – ${formatInt(by[c.id].max)}`,
      op.unit ?? 'ops/s',
      formatRatio(by[c.id].speed / by.baseline.speed),
      formatInt(by[c.id].cpu),
      formatRatio(by.baseline.cpu / by[c.id].cpu),
    ]),
  );
  const targets = results.map((r) => [
    `${r.op.name}: this build ≥ ${TARGET.toFixed(2)}x the baseline`,
    `${formatRatio(r.speedRatio)} (CPU ${formatRatio(r.cpuRatio)}; noise ±${percent(r.noise)}, CPU ±${percent(r.cpuNoise)})`,
    verdict(r),
  ]);
  const listened = results.map((r) => [r.op.name, formatRatio(r.listenedRatio), formatRatio(r.listenedCpuRatio)]);
  return `### This build against the build before the diagnostics channels (Node ${process.version})

${runInfo()} Baseline: \`${baselineDist}\` at commit ${baselineCommit}.

One process loads both builds (the baseline through \`TFM_BENCH_BASELINE\`, its \`dist\`); each
contender has its own manager on a root of its own. Contenders: this build with no subscriber;
the baseline build; the baseline build again, whose spread against the baseline is the noise
("noise ±x%": how far the baseline's median strayed from itself); and this build with a
subscriber on every channel, plain and tracing, on only during its own samples (what listening
costs: reported, not a target), sampled against this build once every target was measured, so
that the functions both share were never run with a subscriber while the targets were. ${SAMPLES} samples per contender and operation, interleaved (round
r starts at contender r), after an untimed warm-up; a garbage collection before each sample, and
\`sync\` with a 150 ms settle before each sample of the 64 MiB stream and of the sweep. Medians of
the speed (wall) and of the process's CPU time per operation (its thread pool's included: the
steadier figure on a loaded machine). "vs baseline": the speed over the baseline's; by CPU, the
baseline's CPU time over the contender's (above 1: cheaper). Rows: a file made and removed
synchronously; the same removed with \`await remove()\`; a directory made and removed; a 1 KiB
Buffer written and the file removed; a 64 MiB stream of 64 KiB chunks written and removed (MB/s,
CPU per stream); a 1 KiB file (written untimed) handed off, claimed and consumed on one manager;
a sweep of a root holding ${DEAD.sessions} dead sessions of ${formatInt(DEAD_FILES)} files of 1 KiB in
${DEAD.sessions * DEAD.dirsPerSession} directories (files removed per second, CPU per sweep; every
root planted and synced before the first operation, so that no plant runs in ext4's slow-create
mode after deletes, and the sweeping manager made before the clock starts).

${table(['Operation', 'Contender', 'speed (median)', 'min – max', 'unit', 'vs baseline', 'CPU µs/op (median)', 'vs baseline, by CPU'], speedRows, ['l', 'l', 'r', 'r', 'l', 'r', 'r', 'r'])}

#### Targets

${targetsTable(targets)}

#### With a subscriber on every channel (not a target)

${table(['Operation', 'speed: listened / this build', 'CPU: this build / listened'], listened, ['l', 'r', 'r'])}
`;
}

// ---------------------------------------------------------------------------------------------

try {
  const baselineCommit = commitOfBaseline();
  console.log(`This build against ${baselineDist} (commit ${baselineCommit}), ${SAMPLES} samples per contender and operation.`);
  const only = process.env.ONLY?.split(',').map((id) => id.trim());
  const unknown = only?.filter((id) => !OPERATIONS.some((op) => op.id === id)) ?? [];
  if (unknown.length > 0) throw new Error(`ONLY names ${unknown.join(', ')}: pick from ${OPERATIONS.map((op) => op.id).join(', ')}`);
  const selected = OPERATIONS.filter((op) => !only || only.includes(op.id));
  if (selected.some((op) => op.id === 'sweep')) plantDeadRoots();
  const results = [];
  for (const op of selected) results.push(await measure(op));
  for (const result of results) await measureListened(result);
  for (const c of CONTENDERS) {
    const handoffs = path.join(c.dir, 'root', 'handoff');
    const left = fs.existsSync(handoffs) ? fs.readdirSync(handoffs) : [];
    if (left.length !== 0) throw new Error(`${c.id} left ${left.length} handoff entries`);
  }
  const doc = render(results, baselineCommit);
  const out = path.join(here, 'results', `node-${major}`);
  if (!only) {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'baseline.md'), doc);
  }
  console.log(`\n${doc}`);
} finally {
  for (const c of CONTENDERS) await c.mgr.close();
  await firstManager.close();
  fs.rmSync(bench, { recursive: true, force: true });
  fs.rmSync(firstRoot, { recursive: true, force: true });
}
