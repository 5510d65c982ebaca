// mgr.spool() against mgr.write() for 1 KiB, 64 KiB and 1 MiB, side by side in one run, with
// maxMemory at 256 KiB: the first two stay in memory, the third goes to disk. Each operation makes
// the file from a Buffer, reads it back whole through createReadStream() (what a caller does with
// it) and removes it. Samples interleaved (round r starts at contender r), medians. Then memory:
// 64 spools in flight at once, each of a source that stops midway, the peak of the bytes held.
// Writes bench/results/node-<major>/spool.md. SAMPLES=n (default 15).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import v8 from 'node:v8';
import vm from 'node:vm';
import { TempFileManager } from '../dist/index.js';
import { formatInt, formatRatio, median, sampleInterleaved, table } from './lib.mjs';
import { runInfo } from './report.mjs';

const here = import.meta.dirname;
const major = process.versions.node.split('.')[0];
const SAMPLES = Number(process.env.SAMPLES ?? 15);
const KiB = 1024;
const MAX_MEMORY = 256 * KiB;
const SIZES = [
  { bytes: KiB, label: '1 KiB', ops: 400 },
  { bytes: 64 * KiB, label: '64 KiB', ops: 150 },
  { bytes: 1024 * KiB, label: '1 MiB', ops: 25 },
];

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
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await once(make, data);
  const used = process.cpuUsage(cpu);
  return { perSecond: ops / (Number(process.hrtime.bigint() - start) / 1e9), cpuMicros: (used.user + used.system) / ops };
}

const contenders = [
  { id: 'write', make: (data) => mgr.write(data) },
  { id: 'spool', make: (data) => mgr.spool(data, { maxMemory: MAX_MEMORY }) },
];

const rows = [];
for (const size of SIZES) {
  const data = Buffer.alloc(size.bytes, 0x5a);
  for (const c of contenders) await sampleOps(c.make, data, Math.ceil(size.ops / 4)); // warm-up
  const results = await sampleInterleaved(contenders, { rounds: SAMPLES, sample: (c) => sampleOps(c.make, data, size.ops) });
  const [write, spool] = results.map((r) => ({ perSecond: median(r.samples.map((x) => x.perSecond)), cpu: median(r.samples.map((x) => x.cpuMicros)) }));
  const where = size.bytes <= MAX_MEMORY ? 'memory' : 'disk';
  const wall = formatRatio(spool.perSecond / write.perSecond);
  const cpu = formatRatio(write.cpu / spool.cpu);
  rows.push([size.label, where, formatInt(write.perSecond), formatInt(spool.perSecond), wall, formatInt(write.cpu), formatInt(spool.cpu), cpu]);
  console.log(`${size.label}: write ${formatInt(write.perSecond)}/s ${formatInt(write.cpu)} µs CPU, spool ${formatInt(spool.perSecond)}/s ${formatInt(spool.cpu)} µs CPU (${wall} wall, ${cpu} CPU)`);
}

/** 64 spools in flight, each given 3/4 of maxMemory and then a source that waits: the bytes held at the peak. */
async function memoryInFlight(count) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc'); // the samples' garbage collected first, so that the growth is the spools'
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
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
  const buffers = process.memoryUsage().arrayBuffers - baseline;
  for (const release of releases) release();
  for (const file of await Promise.all(spools)) await file.remove();
  return { held, buffers };
}
const memory = await memoryInFlight(64);

const doc = `### Spooled files: spool() against write() (Node ${process.version})

${runInfo()}

Each operation makes a temp file from a Buffer, reads it back whole through
\`createReadStream()\` and removes it: \`mgr.write(data)\` against
\`mgr.spool(data, { maxMemory: 256 KiB })\`, one manager, one root. ${SAMPLES} samples per contender
and size, interleaved (round r starts at contender r), after an untimed warm-up; medians of
operations per second (wall) and CPU time per operation (the process's, its thread pool's
included: on a loaded machine the steadier figure, as time spent waiting for a core is not in
it). Targets: spool() 3x or more write()'s speed below \`maxMemory\`, no slower
above it (a Buffer larger than \`maxMemory\` goes straight to write(); a stream's first 256 KiB are
read into memory first).

${table(['size', 'spool() holds it in', 'write() ops/s', 'spool() ops/s', 'speed: spool / write', 'write() CPU µs/op', 'spool() CPU µs/op', 'CPU: write / spool'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'])}

Memory: 64 spools in flight at once, each holding ${formatInt((MAX_MEMORY * 3) / 4 / KiB)} KiB and waiting on its source:
\`mgr.stats().liveBytes\` ${formatInt(memory.held / KiB)} KiB (bound: 64 × 256 KiB = ${formatInt((64 * MAX_MEMORY) / KiB)} KiB),
ArrayBuffer memory (after a garbage collection) grown by ${formatInt(memory.buffers / KiB)} KiB.
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
