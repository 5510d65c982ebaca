// The metered intake against the build before it, side by side in one process: `write()` takes
// every byte through the intake's meter (maxBytes, the quota, the free-space floor, the digest),
// where the build before counted them in write()'s own loop. Contenders, interleaved round-robin
// (round r starts at contender r): this build; the build before; the build before again (its
// spread against itself is the noise). Medians of speed and of CPU time per operation. Each
// operation writes a stream of the given chunks to a new file, then removes it.
//
//   TFM_BENCH_BEFORE=<the earlier build's dist> node bench/intake.mjs
//
// Writes bench/results/node-<major>/intake.md. SAMPLES=n rounds (default 15). Without
// TFM_BENCH_BEFORE it says how to make that build and exits with 3 (skipped).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { formatInt, formatRatio, median, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';
import { flush } from './settle.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const SKIPPED = 3;
const BEFORE_COMMIT = '5e46d01';
const SAMPLES = Number(process.env.SAMPLES ?? 15);
const TARGET = 0.95;
const KiB = 1024;
const MiB = 1024 * KiB;

const beforeDist = process.env.TFM_BENCH_BEFORE;
if (!beforeDist || !fs.existsSync(path.join(beforeDist, 'index.js'))) {
  console.log(`bench/intake.mjs compares this build with the one before the intake (${BEFORE_COMMIT}). Make it with\n` +
    `  git worktree add /tmp/before ${BEFORE_COMMIT} && (cd /tmp/before && npm ci && npm run build)\n` +
    'then run TFM_BENCH_BEFORE=/tmp/before/dist node bench/intake.mjs');
  process.exit(SKIPPED);
}
const ours = await import('../dist/index.js');
const theirs = await import(pathToFileURL(path.join(beforeDist, 'index.js')).href);

const bench = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-intake-'));
const CONTENDERS = [
  { id: 'this', name: 'this build', lib: ours },
  { id: 'before', name: `the build before the intake (${BEFORE_COMMIT})`, lib: theirs },
  { id: 'again', name: 'the build before again (the noise)', lib: theirs },
].map((c) => {
  const dir = path.join(bench, c.id);
  fs.mkdirSync(dir);
  return { ...c, mgr: new c.lib.TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, exitHook: false }) };
});

/** A stream of `total` bytes in chunks of `chunk` bytes, one buffer yielded again and again. */
function chunked(total, chunk) {
  const bytes = Buffer.alloc(chunk, 0x61);
  return Readable.from((function* () {
    for (let sent = 0; sent < total; sent += chunk) yield bytes;
  })(), { objectMode: false });
}

const OPERATIONS = [
  { id: 'write-1k-buffer', name: '`write(1 KiB Buffer)` + `remove()`', ops: 200, bytes: KiB, source: () => Buffer.alloc(KiB, 0x61) },
  { id: 'write-1k-chunks', name: '`write(stream of 16 MiB in 1 KiB chunks)` + `remove()`', ops: 2, bytes: 16 * MiB, unit: 'MB/s', source: () => chunked(16 * MiB, KiB) },
  { id: 'write-1m-chunks', name: '`write(stream of 64 MiB in 1 MiB chunks)` + `remove()`', ops: 2, bytes: 64 * MiB, unit: 'MB/s', source: () => chunked(64 * MiB, MiB) },
];

async function sample(c, op) {
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < op.ops; i++) {
    const file = await c.mgr.write(op.source());
    if (file.size !== op.bytes) throw new Error(`${c.id}: write() made ${file.size} bytes of ${op.bytes}`);
    await file.remove();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  return { speed: op.unit ? (op.ops * op.bytes) / 1e6 / seconds : op.ops / seconds, cpuMicros: (cpu.user + cpu.system) / op.ops };
}

const sections = [];
const targets = [];
try {
  for (const op of OPERATIONS) {
    for (const c of CONTENDERS) await sample(c, op); // warm-up, untimed
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
  for (const c of CONTENDERS) await c.mgr.close();
  fs.rmSync(bench, { recursive: true, force: true });
}

const text = [
  `### The metered intake against the build before it (Node ${process.version})`,
  runInfo(),
  `Medians of ${SAMPLES} interleaved rounds per operation. Method: the head of bench/intake.mjs.`,
  targetsTable(targets),
  ...sections,
].join('\n\n');
const out = path.join(here, 'results', `node-${major}`, 'intake.md');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text + '\n');
console.log(`wrote ${out}`);
