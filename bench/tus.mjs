// Resumable uploads: tempfile-manager/tus against @tus/file-store, both behind @tus/server 2 over
// HTTP, side by side in one run, and against @tus/file-store made as durable as the store (its
// file fsynced after each PATCH, before the answer): the floor of a store that keeps that promise. Each sample starts a fresh server process (bench/tus-server.mjs)
// and uploads with raw tus requests from this process: a POST (`Upload-Length`), then one PATCH of
// the whole file, generated as it is sent from one random MiB sent over and over, with
// backpressure. 1 and 16 uploads of 256 MiB at once (in a server holding a service's heap; 16 also
// in one holding nothing else); MB/s of the whole batch (first POST to last
// answer) and the server's peak RSS (`VmHWM`); samples interleaved, round r starting at contender
// r; medians.
//
//   node bench/tus.mjs            writes bench/results/node-<major>/tus.md and prints it
//   node bench/tus.mjs --quick    32 MiB uploads, one round (printed, not written)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMiB, formatRatio, MiB, sampleInterleaved, stats, table } from './lib.mjs';
import { runInfo } from './report.mjs';
import { flush } from './settle.mjs';

const SERVER = fileURLToPath(new URL('./tus-server.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const QUICK = process.argv.includes('--quick');
const params = QUICK ? { bytes: 32 * MiB, rounds: 1 } : { bytes: 256 * MiB, rounds: 3 };
// A server's own heap changes how V8 collects the garbage of 16 uploads at once: in a process
// holding almost nothing, a heap a MiB larger (a library loaded) is enough to start a major
// collection every few MiB (see bench/analyses/tus.md); a service holds tens of MiB. The targets
// are read in a process holding SERVICE_HEAP_MIB; the case of a server holding nothing is shown too.
const SERVICE_HEAP_MIB = 32;
const CASES = [
  { concurrency: 1, heapMiB: SERVICE_HEAP_MIB },
  { concurrency: 16, heapMiB: SERVICE_HEAP_MIB },
  { concurrency: 16, heapMiB: 0 },
];

const CONTENDERS = [
  { id: 'tempfile-manager', ours: true, name: '`tusStore({ manager })` (tempfile-manager/tus), its locker' },
  { id: 'file-store', name: '`new FileStore({ directory })` (@tus/file-store 2), the default `MemoryLocker`' },
  { id: 'file-store-fsync', name: '@tus/file-store 2 with the same fsync (each PATCH\'s file fsynced before the answer)' },
  {
    id: 'file-store-fsync-thread',
    floor: true,
    name: '@tus/file-store 2 with the same fsync and a heartbeat thread (an idle worker thread started at the first request)',
  },
];

const DATA = randomBytes(MiB);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-tus-bench-'));
let dirs = 0;

function startServer(id, dir, heapMiB) {
  const child = spawn(process.execPath, [SERVER, id, dir, String(heapMiB)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve({ ...JSON.parse(line), child, exited });
    });
    child.once('exit', (code, signal) => reject(new Error(`tus server ${id} exited (${code ?? signal}): ${stderr}`)));
  });
}

/** The server's peak RSS so far, from /proc (VmHWM), in bytes. */
function peakRss(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return Number(/(\d+)/.exec(line)[1]) * 1024;
}

function request(port, method, url, headers) {
  return http.request({ host: '127.0.0.1', port, method, path: url, agent: false, headers: { 'Tus-Resumable': '1.0.0', ...headers } });
}

function answer(req) {
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res));
    });
  });
}

/** One upload: POST, then one PATCH of `bytes` sent with backpressure. */
async function upload(port, bytes) {
  const created = request(port, 'POST', '/files', { 'Upload-Length': String(bytes), 'Content-Length': '0' });
  created.end();
  const res = await answer(created);
  if (res.statusCode !== 201) throw new Error(`POST answered ${res.statusCode}`);
  const location = new URL(res.headers.location, 'http://127.0.0.1').pathname;
  const patch = request(port, 'PATCH', location, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(bytes) });
  const done = answer(patch);
  for (let sent = 0; sent < bytes; sent += DATA.length) {
    if (!patch.write(DATA.subarray(0, Math.min(DATA.length, bytes - sent)))) await new Promise((resolve) => patch.once('drain', resolve));
  }
  patch.end();
  const patched = await done;
  if (patched.statusCode !== 204) throw new Error(`PATCH answered ${patched.statusCode}`);
}

async function sample(contender, { concurrency, heapMiB }) {
  const dir = fs.mkdtempSync(path.join(root, `${contender.id}-${dirs++}-`));
  const server = await startServer(contender.id, dir, heapMiB);
  try {
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, () => upload(server.port, params.bytes)));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { mbps: (concurrency * params.bytes) / 1e6 / seconds, rss: peakRss(server.child.pid) };
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const info = runInfo();
  const results = [];
  for (const at of CASES) {
    console.log(`${caseName(at)}, ${params.rounds} rounds...`);
    const sampled = await sampleInterleaved(CONTENDERS, { rounds: params.rounds, before: flush, sample: (c) => sample(c, at) });
    for (const c of sampled) console.log(`  ${c.id}: ${c.samples.map((s) => `${s.mbps.toFixed(0)} MB/s, ${formatMiB(s.rss)}`).join('; ')}`);
    results.push({ ...at, sampled });
  }
  const section = report(info, results);
  console.log(`\n${section}`);
  if (!QUICK) {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'tus.md'), `${section}\n`);
  }
}

function caseName({ concurrency, heapMiB }) {
  return `${concurrency} × ${formatMiB(params.bytes)}, ${heapMiB === 0 ? 'a server holding nothing else' : `a server holding ${heapMiB} MiB`}`;
}

function report(info, results) {
  const rows = [];
  const targets = [];
  for (const { concurrency, heapMiB, sampled } of results) {
    const named = caseName({ concurrency, heapMiB });
    const reference = heapMiB === 0 ? ' (reference)' : '';
    const ours = sampled.find((c) => c.ours);
    const peer = sampled.find((c) => c.id === 'file-store');
    const floor = sampled.find((c) => c.floor);
    const speed = (c) => stats(c.samples, 'mbps');
    const rss = (c) => stats(c.samples, 'rss');
    const vs = (c, base) => formatRatio(speed(c).median / speed(base).median);
    for (const c of sampled) {
      const s = speed(c);
      rows.push([named, c.name, s.median.toFixed(0), `${s.min.toFixed(0)} – ${s.max.toFixed(0)}`, vs(c, peer), c === peer ? '' : vs(c, floor), formatMiB(rss(c).median)]);
    }
    const ratio = speed(ours).median / speed(peer).median;
    const floorRatio = speed(ours).median / speed(floor).median;
    const fsynced = sampled.find((c) => c.id === 'file-store-fsync');
    const extra = rss(ours).median - rss(floor).median;
    const signed = (bytes) => `${bytes >= 0 ? '+' : ''}${formatMiB(bytes)}`;
    targets.push([`${named}: speed ≥ 0.9x @tus/file-store with the same fsync and thread (the floor)${reference}`, formatRatio(floorRatio), floorRatio >= 0.9 ? 'met' : 'missed']);
    targets.push([`${named}: speed ≥ 1.0x @tus/file-store's${reference}`, formatRatio(ratio), ratio >= 1 ? 'met' : 'missed']);
    targets.push([`${named}: peak RSS within 8 MiB of the floor's${reference}`, signed(extra), extra <= 8 * MiB ? 'met' : 'missed']);
    targets.push([`${named}: what the fsync costs @tus/file-store (with it / without)`, vs(fsynced, peer), '(measured)']);
    targets.push([`${named}: what the thread costs the fsynced @tus/file-store (speed with it / without; peak RSS)`, `${vs(floor, fsynced)}; ${signed(rss(floor).median - rss(fsynced).median)}`, '(measured)']);
  }
  return [
    `### Resumable uploads: tus (Node ${process.version})`,
    '',
    info,
    '',
    '#### Method',
    '',
    `Every store behind \`@tus/server\` 2 (\`new Server({ path: '/files', datastore, locker })\`), each sample a fresh server process ` +
      '(`bench/tus-server.mjs`); the client is the bench process, sending raw tus requests over loopback HTTP: a POST with ' +
      "`Upload-Length`, then one PATCH of the whole file, generated as it is sent from one random MiB, with backpressure. " +
      `${params.rounds} samples per case, interleaved (round r starts with contender r), the page cache flushed before each; medians. ` +
      'MB/s is the batch (every byte of every upload, 10^6 bytes a MB) over the time from the first POST to the last answer. ' +
      "Peak RSS is the server process's `VmHWM`. tempfile-manager/tus fsyncs each PATCH's bytes before it answers (the offset a " +
      "client is told is on disk) and moves the finished upload into the manager's session, where `onUploadFinish` keeps it (a rename " +
      'to a directory beside the root); @tus/file-store does not fsync, and leaves the finished file where it is. So a third contender measures a ' +
      "durable store: @tus/file-store with the same fsync (a subclass in `bench/tus-server.mjs` whose `write()` fsyncs the file " +
      'after the PATCH\'s last byte, before the answer; nothing else changes). A fourth adds what a process that keeps a heartbeat ' +
      'through a blocked event loop runs (tempfile-manager\'s beat thread, docs/crash-recovery.md): an idle worker thread, started ' +
      'at the first request. That is the floor. The targets: at least 0.9x that floor, the promises ' +
      "kept; at least @tus/file-store's own speed where the store can; a peak RSS within 8 MiB of the floor's. " +
      'The last two target rows of each case say what the fsync alone, and the thread alone, cost @tus/file-store. ' +
      `Each server process first holds ${SERVICE_HEAP_MIB} MiB of live objects of its own, as a service's framework, routes and caches do: ` +
      'in a process holding almost nothing, 16 uploads at once keep the young generation full, and a heap one MiB larger (this library ' +
      "loaded) leaves the old generation less headroom than the young one, so V8 starts a major collection every few MiB; with a service's " +
      "heap neither store does (bench/analyses/tus.md). The case of a server holding nothing else is measured too, as a reference; the targets are read on the others.",
    '',
    table(['Case', 'Contender', 'MB/s (median)', 'min – max', 'vs @tus/file-store', 'vs the floor (same fsync and thread)', 'peak RSS (VmHWM, median)'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    '',
    '#### Targets',
    '',
    table(['Target', 'Measured', ''], targets, ['l', 'r', 'l']),
  ].join('\n');
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
