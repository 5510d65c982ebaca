// The metered intake against the build before it: `write()` takes every byte through the
// intake's meter (maxBytes, the quota, the free-space floor, the digest), where the build before
// counted them in write()'s own loop. Contenders: this build; the build before; the build before
// again (its spread against itself is the noise). Each sample runs in a process of its own
// (bench/intake-worker.mjs: warm-up, then the timed operations), so that no build shares a heap,
// a JIT or a thread with another; samples interleaved round-robin (round r starts at contender
// r). Medians of speed and of CPU time per operation (the whole process's: a thread the build
// runs is its cost). Each operation writes a stream of the given chunks to a new file, then
// removes it.
//
//   TFM_BENCH_BEFORE=<the earlier build's dist> node bench/intake.mjs
//
// Writes bench/results/node-<major>/intake.md. SAMPLES=n rounds (default 15). Without
// TFM_BENCH_BEFORE it says how to make that build and exits with 3 (skipped).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatInt, formatRatio, median, runChild, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';
import { flush } from './settle.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const SKIPPED = 3;
const BEFORE_COMMIT = '5e46d01';
const SAMPLES = Number(process.env.SAMPLES ?? 15);
const TARGET = 0.95;

const beforeDist = process.env.TFM_BENCH_BEFORE;
if (!beforeDist || !fs.existsSync(path.join(beforeDist, 'index.js'))) {
  console.log(`bench/intake.mjs compares this build with the one before the intake (${BEFORE_COMMIT}). Make it with\n` +
    `  git worktree add /tmp/before ${BEFORE_COMMIT} && (cd /tmp/before && npm ci && npm run build)\n` +
    'then run TFM_BENCH_BEFORE=/tmp/before/dist node bench/intake.mjs');
  process.exit(SKIPPED);
}
const WORKER = path.join(here, 'intake-worker.mjs');
const bench = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-intake-'));
const CONTENDERS = [
  { id: 'this', name: 'this build', dist: path.join(here, '..', 'dist') },
  { id: 'before', name: `the build before the intake (${BEFORE_COMMIT})`, dist: beforeDist },
  { id: 'again', name: 'the build before again (the noise)', dist: beforeDist },
];

const OPERATIONS = [
  { id: 'write-1k-buffer', name: '`write(1 KiB Buffer)` + `remove()`' },
  { id: 'write-1k-chunks', name: '`write(stream of 16 MiB in 1 KiB chunks)` + `remove()`', unit: 'MB/s' },
  { id: 'write-1m-chunks', name: '`write(stream of 64 MiB in 1 MiB chunks)` + `remove()`', unit: 'MB/s' },
];

let samplesTaken = 0;
const sample = (c, op) => runChild(WORKER, [c.dist, op.id, path.join(bench, `root-${(samplesTaken += 1)}`)]);

const sections = [];
const targets = [];
try {
  for (const op of OPERATIONS) {
    const samples = new Map(CONTENDERS.map((c) => [c, []]));
    for (let round = 0; round < SAMPLES; round++) {
      for (let k = 0; k < CONTENDERS.length; k++) {
        const c = CONTENDERS[(round + k) % CONTENDERS.length];
        await flush();
        samples.get(c).push(await sample(c, op));
      }
    }
    const rows = CONTENDERS.map((c) => ({ c, speed: median(samples.get(c).map((s) => s.speed)), cpu: median(samples.get(c).map((s) => s.cpuMicros)) }));
    const before = rows.find((r) => r.c.id === 'before');
    const unit = op.unit ?? 'ops/s';
    sections.push(`#### ${op.name}\n\n` + table(['contender', unit, 'CPU µs per op', 'against the build before'],
      rows.map((r) => [r.c.name, formatInt(r.speed), formatInt(r.cpu), formatRatio(r.speed / before.speed)]), ['l', 'r', 'r', 'r']));
    const ours = rows.find((r) => r.c.id === 'this');
    const noise = rows.find((r) => r.c.id === 'again');
    targets.push([`${op.name}: ≥ ${TARGET}x the build before`, `${formatRatio(ours.speed / before.speed)} (the build before against itself: ${formatRatio(noise.speed / before.speed)})`, ours.speed / before.speed >= TARGET]);
    console.log(sections.at(-1) + '\n');
  }
} finally {
  fs.rmSync(bench, { recursive: true, force: true });
}

const text = [
  `### The metered intake against the build before it (Node ${process.version})`,
  runInfo(),
  `Medians of ${SAMPLES} interleaved rounds per operation, each sample in a process of its own. Method: the head of bench/intake.mjs.`,
  targetsTable(targets),
  ...sections,
].join('\n\n');
const out = path.join(here, 'results', `node-${major}`, 'intake.md');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text + '\n');
console.log(`wrote ${out}`);
