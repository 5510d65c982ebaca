// mgr.spool() against mgr.write() for 1 KiB, 64 KiB and 1 MiB, side by side in one run, with
// maxMemory at 256 KiB: the first two stay in memory, the third goes to disk. Each operation makes
// the file from a Buffer, reads it back whole through createReadStream() (what a caller does with
// it) and removes it. A third contender, write() again, measures the noise: at 1 MiB spool() runs
// write()'s own path, so its ratio to write() can be told from the machine's only beside write()'s
// ratio to itself. Samples interleaved (round r starts at contender r), a garbage collection before
// each, medians. Then the same three from a source of many chunks (an array of views of one buffer,
// as a parser hands out slices): 64 KiB in 1-byte chunks, 256 KiB in 1 KiB and in 64 KiB chunks,
// each within maxMemory, so that spool() packs every chunk into its blocks. Then memory: 64 spools in flight at once, each of a source that stops midway, the
// peak of the bytes held. Writes bench/results/node-<major>/spool.md. SAMPLES=n (default 15).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import v8 from 'node:v8';
import vm from 'node:vm';
import { TempFileManager } from '../dist/index.js';
import { formatInt, formatRatio, formatSize, median, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const SAMPLES = Number(process.env.SAMPLES ?? 15);
const KiB = 1024;
const MAX_MEMORY = 256 * KiB;
const SIZES = [
  { bytes: KiB, label: '1 KiB', ops: 400 },
  { bytes: 64 * KiB, label: '64 KiB', ops: 150 },
  { bytes: 1024 * KiB, label: '1 MiB', ops: 40 },
];
/** spool() below maxMemory: at least this many times write()'s speed. */
const MEMORY_TARGET = 3;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-bench-spool-'));
const mgr = new TempFileManager({ root: path.join(root, 'root'), sweepOnStart: false });

async function once(make, data) {
  const file = await make(data);
  const back = await buffer(file.createReadStream());
  if (back.length !== data.length) throw new Error(`read ${back.length} bytes of ${data.length}`);
  await file.remove();
}

/** One sample: operations per second (wall), and the process's CPU time per operation in µs (the pool's threads included). */
async function sampleOps(make, data, ops) {
  gc(); // the garbage of the sample before (another contender's) is not collected in this one's time
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await once(make, data);
  const used = process.cpuUsage(cpu);
  return { perSecond: ops / (Number(process.hrtime.bigint() - start) / 1e9), cpuMicros: (used.user + used.system) / ops };
}

const contenders = [
  { id: 'write', make: (data) => mgr.write(data) },
  { id: 'spool', make: (data) => mgr.spool(data, { maxMemory: MAX_MEMORY }) },
  { id: 'write again', make: (data) => mgr.write(data) },
];

const rows = [];
const targets = [];
for (const size of SIZES) {
  const data = Buffer.alloc(size.bytes, 0x5a);
  for (const c of contenders) await sampleOps(c.make, data, size.ops); // warm-up, untimed: one whole sample each
  const results = await sampleInterleaved(contenders, { rounds: SAMPLES, sample: (c) => sampleOps(c.make, data, size.ops) });
  const [write, spool, again] = results.map((r) => ({ perSecond: median(r.samples.map((x) => x.perSecond)), cpu: median(r.samples.map((x) => x.cpuMicros)) }));
  const where = size.bytes <= MAX_MEMORY ? 'memory' : 'disk';
  const ratio = { wall: spool.perSecond / write.perSecond, cpu: write.cpu / spool.cpu };
  const noise = { wall: Math.abs(1 - again.perSecond / write.perSecond), cpu: Math.abs(1 - write.cpu / again.cpu) };
  const [wall, cpu] = [formatRatio(ratio.wall), formatRatio(ratio.cpu)];
  rows.push([size.label, where, formatInt(write.perSecond), formatInt(spool.perSecond), wall, formatInt(write.cpu), formatInt(spool.cpu), cpu, `±${percent(noise.wall)} / ±${percent(noise.cpu)}`]);
  targets.push(target(size, where, ratio, noise));
  console.log(`${size.label}: write ${formatInt(write.perSecond)}/s ${formatInt(write.cpu)} µs CPU, spool ${formatInt(spool.perSecond)}/s ${formatInt(spool.cpu)} µs CPU (${wall} wall, ${cpu} CPU; write against itself ±${percent(noise.wall)} wall, ±${percent(noise.cpu)} CPU)`);
}

/** Sources of many chunks, each within maxMemory: 1-byte chunks make a smaller total, as each costs a read. */
const CHUNKED = [
  { chunk: 1, label: '1 B', bytes: 64 * KiB, ops: 4 },
  { chunk: KiB, label: '1 KiB', bytes: 256 * KiB, ops: 60 },
  { chunk: 64 * KiB, label: '64 KiB', bytes: 256 * KiB, ops: 100 },
];
const chunkedRows = [];
for (const size of CHUNKED) {
  const whole = Buffer.alloc(size.bytes, 0x5a);
  const chunks = Array.from({ length: size.bytes / size.chunk }, (_, i) => whole.subarray(i * size.chunk, (i + 1) * size.chunk));
  const data = { length: size.bytes, source: () => chunks };
  const make = (c) => (d) => c.make(d.source());
  for (const c of contenders) await sampleOps(make(c), data, size.ops);
  const results = await sampleInterleaved(contenders, { rounds: SAMPLES, sample: (c) => sampleOps(make(c), data, size.ops) });
  const [write, spool, again] = results.map((r) => ({ perSecond: median(r.samples.map((x) => x.perSecond)), cpu: median(r.samples.map((x) => x.cpuMicros)) }));
  const ratio = { wall: spool.perSecond / write.perSecond, cpu: write.cpu / spool.cpu };
  const noise = { wall: Math.abs(1 - again.perSecond / write.perSecond), cpu: Math.abs(1 - write.cpu / again.cpu) };
  const total = formatSize(size.bytes);
  chunkedRows.push([`${total} in ${size.label} chunks`, formatInt(write.perSecond), formatInt(spool.perSecond), formatRatio(ratio.wall), formatInt(write.cpu), formatInt(spool.cpu), formatRatio(ratio.cpu), `±${percent(noise.wall)} / ±${percent(noise.cpu)}`]);
  console.log(`${total} in ${size.label} chunks: write ${formatInt(write.perSecond)}/s ${formatInt(write.cpu)} µs CPU, spool ${formatInt(spool.perSecond)}/s ${formatInt(spool.cpu)} µs CPU (${formatRatio(ratio.wall)} wall, ${formatRatio(ratio.cpu)} CPU; write against itself ±${percent(noise.wall)} wall, ±${percent(noise.cpu)} CPU)`);
}

function percent(x) {
  return `${(x * 100).toFixed(0)}%`;
}

/**
 * The target of one size: below maxMemory, spool() at least 3x write()'s speed, wall and CPU;
 * above it, no slower: spool() / write() at least 1, or short of 1 by no more than write()'s
 * spread against itself (the same path, so anything less cannot be told from the machine).
 */
function target(size, where, ratio, noise) {
  const measured = `${formatRatio(ratio.wall)} wall, ${formatRatio(ratio.cpu)} CPU`;
  if (where === 'memory') return [`${size.label}: spool() ≥ ${MEMORY_TARGET}x write()`, measured, ratio.wall >= MEMORY_TARGET && ratio.cpu >= MEMORY_TARGET];
  const slowest = Math.min(ratio.wall, ratio.cpu);
  const met = slowest >= 1 ? true : ratio.wall >= 1 - noise.wall && ratio.cpu >= 1 - noise.cpu ? 'yes (within noise)' : false;
  return [`${size.label}: spool() no slower than write()`, `${measured} (write() against itself: ±${percent(noise.wall)}, ±${percent(noise.cpu)})`, met];
}

/**
 * ArrayBuffer memory after a full collection, twice a turn of the event loop apart: V8 frees dead
 * ArrayBuffers' memory after a collection, not in it.
 */
async function arrayBuffersLive() {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** 64 spools in flight, each given 3/4 of maxMemory and then a source that waits: the bytes held at the peak. */
async function memoryInFlight(count) {
  const baseline = await arrayBuffersLive(); // the samples' garbage collected first, so that the growth is the spools'
  const releases = [];
  const spools = Array.from({ length: count }, () => {
    let release;
    const waiting = new Promise((resolve) => (release = resolve));
    releases.push(release);
    return mgr.spool((async function* () {
      yield Buffer.alloc((MAX_MEMORY * 3) / 4, 1);
      await waiting;
    })(), { maxMemory: MAX_MEMORY });
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const held = mgr.stats().liveBytes;
  // Read at once, the sources' own buffers, dead once copied, were counted too.
  const buffers = (await arrayBuffersLive()) - baseline;
  for (const release of releases) release();
  for (const file of await Promise.all(spools)) await file.remove();
  return { held, buffers };
}
const memory = await memoryInFlight(64);

const doc = `### Spooled files: spool() against write() (Node ${process.version})

${runInfo()}

Each operation makes a temp file from a Buffer, reads it back whole through
\`createReadStream()\` and removes it: \`mgr.write(data)\` against
\`mgr.spool(data, { maxMemory: 256 KiB })\`, one manager, one root, and \`mgr.write(data)\` again
as a third contender: how far write()'s median strays from itself is the noise (wall / CPU).
${SAMPLES} samples per contender and size, interleaved (round r starts at contender r), after an
untimed warm-up of one sample each, a garbage collection before each sample (so that one
contender's garbage is not collected in another's time); medians of operations per second (wall)
and CPU time per operation (the process's, its thread pool's included: on a loaded machine the
steadier figure, as time spent waiting for a core is not in it). Targets: spool() 3x or more
write()'s speed below \`maxMemory\`, no slower above it, within the noise: a Buffer larger than
\`maxMemory\` goes straight to write(), the same path (a stream's first 256 KiB are read into
memory first).

${table(['size', 'spool() holds it in', 'write() ops/s', 'spool() ops/s', 'speed: spool / write', 'write() CPU µs/op', 'spool() CPU µs/op', 'CPU: write / spool', 'noise: write against itself (wall / CPU)'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'])}

${targetsTable(targets)}

From a source of many chunks (an array of views of one buffer), each total within \`maxMemory\`:
spool() copies each chunk into its blocks, write() into its batch buffer (or, at 64 KiB, writes
it as it is); same sampling.

${table(['source', 'write() ops/s', 'spool() ops/s', 'speed: spool / write', 'write() CPU µs/op', 'spool() CPU µs/op', 'CPU: write / spool', 'noise: write against itself (wall / CPU)'], chunkedRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'])}

Memory: 64 spools in flight at once, each holding ${formatInt((MAX_MEMORY * 3) / 4 / KiB)} KiB and waiting on its source:
\`mgr.stats().liveBytes\` ${formatInt(memory.held / KiB)} KiB (bound: 64 × 256 KiB = ${formatInt((64 * MAX_MEMORY) / KiB)} KiB),
ArrayBuffer memory (a garbage collection before and after) grown by ${formatInt(memory.buffers / KiB)} KiB.
`;
await mgr.close();
fs.rmSync(root, { recursive: true, force: true });
const out = path.join(here, 'results', `node-${major}`);
fs.mkdirSync(out, { recursive: true });
const file = path.join(out, 'spool.md');
const NOTES = '<!-- notes: kept when bench/spool.mjs reruns -->';
const previous = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
const notes = previous.includes(NOTES) ? `\n${previous.slice(previous.indexOf(NOTES))}` : '';
fs.writeFileSync(file, doc + notes);
console.log(doc);
