// Uploads through the one-line adapters against their peers, side by side in one run: upload() of
// tempfile-manager/express against multer 2 diskStorage and formidable 3; request.saveUploads() of
// tempfile-manager/fastify against @fastify/multipart's saveRequestFiles(). Every server runs in a
// child process of its own (bench/upload-server.mjs), a fresh one per sample; the client is this
// process. Phases:
//   - small uploads: 10 KiB and 1 MiB files, 1 and 32 at once, requests/s and p99 latency, each
//     server's peak RSS (VmHWM), and the files left 1 s after a load cut off mid-request;
//   - the same load: every case again, every server on one schedule (0.9x the
//     slowest one's requests/s), its peak RSS and CPU per request for the same work;
//   - large uploads: 256 MiB files, 8 at once: throughput and peak RSS growth;
//   - a client abort half-way through a large upload: files and descriptors left;
//   - a load run: 3 x 60 s of 1 MiB uploads, 32 at once, against the Fastify upload: RSS after each.
//
//   node bench/uploads.mjs            writes bench/results/node-<major>/uploads.md and prints it
//   node bench/uploads.mjs --quick    fewer, shorter samples, to try it out (printed, not written)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { balancedOrder, formatInt, formatMiB, formatRatio, formatSize, GiB, median, MiB, primePageCache, ROOT_MARKER, sampleInterleaved, stats, table, targetsTable } from './lib.mjs';
import { flush } from './settle.mjs';
import { control, drive, startServer, upload } from './upload-client.mjs';
import { commitOf } from './report.mjs';

const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const KiB = 1024;

const QUICK = process.argv.includes('--quick');
const params = QUICK
  ? { smallSizes: [10 * KiB, MiB], smallConcurrency: [1, 32], smallRounds: 2, equalRounds: 1, equalServers: 1, equalWarmup: 1, sliceSeconds: 0.5, bytes: 32 * MiB, concurrency: 8, largeRounds: 1, abortAt: 16 * MiB, abortChecks: [1000, 3000], loadRuns: 3, loadSeconds: 5, loadConcurrency: 32, loadBytes: MiB, warmupBytes: 4 * MiB, chunk: MiB, appHeapMiB: 16, bandHeaps: [0, 2, 16], bandBytes: 16 * MiB, bandRounds: 1 }
  : { smallSizes: [10 * KiB, MiB], smallConcurrency: [1, 32], smallRounds: 24, equalRounds: 6, equalServers: 16, equalWarmup: 2, sliceSeconds: 0.5, bytes: 256 * MiB, concurrency: 8, largeRounds: 3, abortAt: 128 * MiB, abortChecks: [1000, 5000], loadRuns: 3, loadSeconds: 60, loadConcurrency: 32, loadBytes: MiB, warmupBytes: 4 * MiB, chunk: MiB, appHeapMiB: 16, bandHeaps: [0, 2, 16], bandBytes: 64 * MiB, bandRounds: 3 };

const CONTENDERS = [
  { id: 'express-upload', framework: 'Express', ours: true, short: '`upload()`', name: "`upload({ field: 'file', maxBytes })` (tempfile-manager/express)" },
  { id: 'multer', framework: 'Express', name: 'multer 2 `diskStorage`, `.single()`', short: 'multer', named: true },
  { id: 'formidable', framework: 'Express', name: 'formidable 3 `form.parse(req)`, `uploadDir`', short: 'formidable' },
  { id: 'fastify-upload', framework: 'Fastify', ours: true, short: '`saveUploads()`', name: "`request.saveUploads({ field: 'file', maxBytes })` (tempfile-manager/fastify)" },
  { id: 'fastify-save', framework: 'Fastify', name: '@fastify/multipart `request.saveRequestFiles({ tmpdir })`', short: 'saveRequestFiles()', named: true },
];
// The floor of the same-load table: each peer's server with the library loaded and a manager made,
// none of it used (bench/upload-server.mjs): the peer carrying the library's fixed cost.
const FLOORS = CONTENDERS.filter((c) => !c.ours).map((c) => ({ ...c, id: `${c.id}+library`, named: false, floorOf: c.id, short: `${c.short} + the library, unused`, name: `${c.name}, with the library loaded, unused` }));
// TFM_BENCH_BASELINE=<another build's dist>: our contenders again on that build, side by side.
if (process.env.TFM_BENCH_BASELINE) {
  for (const c of CONTENDERS.filter((x) => x.ours)) CONTENDERS.push({ ...c, id: `${c.id}@baseline`, ours: false, name: `${c.name}, baseline build`, short: `${c.short ?? c.id} (baseline)` });
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-uploads-bench-'));
let dirs = 0;
const freshDir = (id) => fs.mkdtempSync(path.join(root, `${id}-${dirs++}-`));


/** Regular files under `dir` (recursively) and their bytes; the adapters' root marker is not an upload. */
function filesUnder(dir) {
  let count = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (d === dir && entry.name === ROOT_MARKER) continue;
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) {
        count++;
        try {
          bytes += fs.lstatSync(p).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  try {
    walk(dir);
  } catch {
    // the directory itself is gone
  }
  return { count, bytes };
}


async function checkUpload(id, result, bytes) {
  if (result.status !== 200) throw new Error(`${id}: status ${result.status}: ${result.body}`);
  const { size } = JSON.parse(result.body);
  if (size !== bytes) throw new Error(`${id}: the server wrote ${size} bytes, not ${bytes}`);
}

/** One throughput sample: a fresh server, a warm-up upload, then `concurrency` uploads at once. */
async function throughputSample(c, concurrency, bytes = params.bytes, env = process.env) {
  const dir = freshDir(c.id);
  const server = await startServer(c.id, dir, env);
  try {
    await checkUpload(c.id, await upload(server.port, params.warmupBytes), params.warmupBytes);
    await waitForNoFiles(dir, 2000);
    await flush();
    primePageCache(path.join(root, 'prime'), bytes * concurrency);
    await control(server, '/baseline', 'POST');
    const start = process.hrtime.bigint();
    const results = await Promise.all(Array.from({ length: concurrency }, () => upload(server.port, bytes)));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    for (const r of results) await checkUpload(c.id, r, bytes);
    const s = await control(server, '/stats');
    const left = await waitForNoFiles(dir, 3000);
    return {
      seconds,
      bytes: bytes * concurrency,
      cpu: s.cpu,
      gc: s.gc,
      majorGcs: s.gc.major?.count ?? 0,
      growth: Math.max(0, s.maxRss - s.baseline),
      sampledGrowth: Math.max(0, s.sampledPeak - s.baseline),
      left: left.count,
    };
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForNoFiles(dir, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let found = filesUnder(dir);
  while (found.count > 0 && Date.now() < deadline) {
    await sleep(50);
    found = filesUnder(dir);
  }
  return found;
}

/** One abort case: the client goes away after `abortAt` bytes of a `bytes` upload. */
async function abortSample(c) {
  const dir = freshDir(c.id);
  const server = await startServer(c.id, dir);
  try {
    await checkUpload(c.id, await upload(server.port, params.warmupBytes), params.warmupBytes);
    await waitForNoFiles(dir, 2000);
    const before = await control(server, '/stats');
    const abortedAt = Date.now();
    await upload(server.port, params.bytes, params.abortAt);
    const checks = [];
    for (const at of params.abortChecks) {
      await sleep(Math.max(0, abortedAt + at - Date.now()));
      const files = filesUnder(dir);
      const alive = server.alive();
      const s = alive ? await control(server, '/stats').catch(() => undefined) : undefined;
      checks.push({ at, ...files, fds: s ? s.fds - before.fds : undefined, held: s?.uploadFds, alive });
    }
    return { checks, stderr: server.stderr().trim().split('\n').slice(-3).join(' ') };
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------


/**
 * One small-upload case: every contender's server runs at once, and the client drives them in
 * turn, `sliceSeconds` each, round after round (each round starting at another contender), so
 * that the machine's load swings hit every contender alike. Returns each contender's slices.
 */
async function smallCase(bytes, concurrency, env = process.env) {
  const servers = [];
  try {
    for (const c of CONTENDERS) {
      const dir = freshDir(c.id);
      servers.push({ c, dir, server: await startServer(c.id, dir, env), slices: [] });
    }
    for (const s of servers) await drive(s.server.port, bytes, concurrency, 1); // warm-up: loads and compiles the code
    for (let round = 0; round < params.smallRounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const s = servers[(round + k) % servers.length];
        const slice = await drive(s.server.port, bytes, concurrency, params.sliceSeconds);
        if (slice.failures > 0) throw new Error(`${s.c.id}: ${slice.failures} uploads failed`);
        s.slices.push(slice);
      }
    }
    // The end of a load: one more slice each, cut off at its deadline; the files left 1 s later
    // (clients cut off mid-request must leave none), then each server's peak RSS over the case.
    for (const s of servers) {
      const slice = await drive(s.server.port, bytes, concurrency, params.sliceSeconds, { cut: true });
      s.cutOff = slice.cutOff;
      await sleep(1000);
      s.left = filesUnder(s.dir).count;
    }
    for (const s of servers) s.peakRss = (await control(s.server, '/stats')).maxRss;
    return servers.map((s) => ({ ...s.c, samples: s.slices, left: s.left, cutOff: s.cutOff, peakRss: s.peakRss }));
  } finally {
    for (const s of servers) {
      await s.server.stop();
      fs.rmSync(s.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Peak RSS for the same traffic: every contender of `bytes` × `concurrency`, and every peer
 * with the library loaded (the floor), driven on one schedule, `rate` requests a second (the
 * slowest contender's pace, so that each keeps up), slices interleaved as in {@link smallCase}.
 * A faster server under a closed loop takes more requests a second, and V8 grows its heap with
 * the rate (bench/analyses/uploads.md); here each server does the same work. `equalServers`
 * fresh servers each, one set after the other: a server's `VmHWM` is one sample, and the median
 * of them is its figure. Returns each contender's requests/s, CPU per request and peak RSS.
 */
async function equalLoadCase(bytes, concurrency, rate, env = process.env) {
  const contenders = [...CONTENDERS, ...FLOORS];
  const totals = new Map(contenders.map((c) => [c.id, { count: 0, seconds: 0, cpu: 0, peaks: [] }]));
  for (let rep = 0; rep < params.equalServers; rep++) {
    const servers = [];
    try {
      // Each set in another order (see balancedOrder()): a server's place in its set moved its peak
      // by more than the targets' 2 MiB (bench/analyses/uploads.md).
      for (const i of balancedOrder(contenders.length, rep)) {
        const c = contenders[i];
        const dir = freshDir(c.id);
        servers.push({ c, dir, server: await startServer(c.id, dir, env) });
      }
      // The warm-up interleaved as the slices are, so that every server waits as long between its
      // warm-up and its first slice: warmed one after the other, the first four servers of a set
      // idled 8 to 14 s before their slices, and peaked 10 to 15 MiB over the last four.
      for (let turn = 0; turn < params.equalWarmup / params.sliceSeconds; turn++) {
        for (const s of servers) await drive(s.server.port, bytes, concurrency, params.sliceSeconds, { rate });
      }
      for (const s of servers) await control(s.server, '/baseline', 'POST');
      for (let round = 0; round < params.equalRounds; round++) {
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(round + k) % servers.length];
          const slice = await drive(s.server.port, bytes, concurrency, params.sliceSeconds, { rate });
          if (slice.failures > 0) throw new Error(`${s.c.id}: ${slice.failures} uploads failed`);
          const total = totals.get(s.c.id);
          total.count += slice.count;
          total.seconds += params.sliceSeconds;
        }
      }
      for (const s of servers) {
        const stats = await control(s.server, '/stats');
        const total = totals.get(s.c.id);
        total.cpu += stats.cpu;
        total.peaks.push(stats.maxRss);
      }
    } finally {
      for (const s of servers) {
        await s.server.stop();
        fs.rmSync(s.dir, { recursive: true, force: true });
        fs.rmSync(`${s.dir}.library`, { recursive: true, force: true });
      }
    }
  }
  return contenders.map((c) => {
    const { count, seconds, cpu, peaks } = totals.get(c.id);
    return { ...c, rps: count / seconds, cpuMicros: (cpu * 1e6) / count, peakRss: median(peaks), peaks };
  });
}

/**
 * The same-load case of a closed-loop one: its contenders at 0.8x the slowest one's median
 * requests/s, with `appHeap` MiB of an application's heap in every server when given.
 */
async function sameLoadAs({ bytes, concurrency, results }, appHeap = undefined) {
  // 0.8x: at 0.9x, a peer fell 10% behind the schedule at 10 KiB × 32 (six servers one after the
  // other on a shared machine), and its peak was then that of less work.
  const rate = Math.floor(0.8 * Math.min(...results.map((r) => stats(r.samples, 'rps').median)));
  const env = appHeap === undefined ? process.env : withAppHeap(appHeap);
  return { bytes, concurrency, rate, appHeap, results: await equalLoadCase(bytes, concurrency, rate, env) };
}

/** The environment of a server that holds `mib` MiB of an application's own objects (bench/upload-server.mjs). */
const withAppHeap = (mib) => ({ ...process.env, TFM_BENCH_APP_HEAP_MIB: String(mib) });

// ---------------------------------------------------------------------------------------------
// The load run: one Fastify upload server, runs of `loadSeconds` back to back, RSS after each.

async function loadRun() {
  const dir = freshDir('load');
  const server = await startServer('fastify-upload', dir);
  const runs = [];
  try {
    for (let i = 0; i < params.loadRuns; i++) {
      const result = await drive(server.port, params.loadBytes, params.loadConcurrency, params.loadSeconds);
      await sleep(2000); // the last responses' files removed, the connections closed
      const { rss } = await control(server, '/stats');
      const { rss: afterGc } = await control(server, '/baseline', 'POST'); // gc() twice, then the RSS
      runs.push({ ...result, rss, afterGc, left: filesUnder(dir).count });
    }
    return runs;
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
  const small = [];
  for (const bytes of params.smallSizes) {
    for (const concurrency of params.smallConcurrency) {
      const results = await smallCase(bytes, concurrency);
      small.push({ bytes, concurrency, results });
      console.error(`small ${formatSize(bytes)} c=${concurrency} done after ${elapsed()}`);
    }
  }
  const equalLoad = [];
  for (const closedLoop of small) {
    equalLoad.push(await sameLoadAs(closedLoop));
    console.error(`same load ${formatSize(closedLoop.bytes)} c=${closedLoop.concurrency} done after ${elapsed()}`);
  }
  const large = await sampleInterleaved(CONTENDERS, { rounds: params.largeRounds, sample: (c) => throughputSample(c, params.concurrency) });
  console.error(`large c=${params.concurrency} done after ${elapsed()}`);
  const appHeapSmall = [{ bytes: MiB, concurrency: 32, results: await smallCase(MiB, 32, withAppHeap(params.appHeapMiB)) }];
  console.error(`small 1 MiB c=32 with an application's heap done after ${elapsed()}`);
  for (const closedLoop of appHeapSmall) equalLoad.push(await sameLoadAs(closedLoop, params.appHeapMiB));
  console.error(`same load with an application's heap done after ${elapsed()}`);
  const band = [];
  for (const mib of params.bandHeaps) {
    band.push({ mib, results: await sampleInterleaved(CONTENDERS, { rounds: params.bandRounds, sample: (c) => throughputSample(c, params.concurrency, params.bandBytes, withAppHeap(mib)) }) });
  }
  console.error(`large uploads by application heap done after ${elapsed()}`);
  const aborts = {};
  for (const c of CONTENDERS) {
    await flush();
    aborts[c.id] = await abortSample(c);
  }
  console.error(`aborts done after ${elapsed()}`);
  const load = await loadRun();
  console.error(`load run done after ${elapsed()}`);
  const section = render({ small, equalLoad, large, aborts, load, appHeapSmall, band }, Math.round((Date.now() - started) / 1000));
  if (!QUICK) {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'uploads.md'), section);
  }
  console.log(section);
}

const na = (x, f) => (x === undefined ? 'n/a' : f(x));

function heldText(held) {
  if (held === undefined) return 'n/a';
  if (held.length === 0) return 'none';
  return held.map((h) => `${formatSize(h.size)}${h.deleted ? ', deleted (the space stays in use)' : ''}`).join('; ');
}

/**
 * The same load's memory target: peak RSS at most the leanest peer's + 2 MiB. Where the floor (that
 * peer with the library loaded, unused) already peaks past it, the library's fixed cost alone
 * exceeds the target, and the target is 0.9x the floor: this server's peak at most the floor's ÷ 0.9.
 */
function sameLoadRssTarget(label, ours, leanest, floor) {
  const limit = leanest.peakRss + 2 * MiB;
  const pastFloor = floor.peakRss > limit;
  return [
    `${label}: peak RSS ≤ the leanest peer's (${leanest.short}) + 2 MiB, or ≤ the floor (${floor.short}) ÷ 0.9 where it is past that`,
    `${formatMiB(ours.peakRss)} vs ${formatMiB(leanest.peakRss)}; floor ${formatMiB(floor.peakRss)}${pastFloor ? ` (past the target), ${formatRatio(floor.peakRss / ours.peakRss)} of this` : ''}; requests/s ${formatInt(ours.rps)} vs ${formatInt(leanest.rps)} and ${formatInt(floor.rps)}`,
    ours.peakRss <= limit || (pastFloor && ours.peakRss <= floor.peakRss / 0.9),
  ];
}

/**
 * One framework's small-upload table under `heading`, and its targets (requests/s against the best
 * and the named peer, peak RSS against the leanest, no file left after the cut).
 */
function smallTable(out, targets, framework, small, heading, label = '') {
  out.push(heading, '');
  const named = CONTENDERS.find((c) => c.framework === framework && c.named);
  const rows = [];
  for (const { bytes, concurrency, results } of small) {
    const mine = results.filter((r) => r.framework === framework);
    const summary = mine.map((r) => ({ ...r, rps: stats(r.samples, 'rps'), p99: stats(r.samples, 'p99') }));
    const peers = summary.filter((r) => !r.ours);
    const best = peers.reduce((a, b) => (b.rps.median > a.rps.median ? b : a));
    const leanest = peers.reduce((a, b) => (b.peakRss < a.peakRss ? b : a));
    const peer = summary.find((r) => r.id === named.id);
    for (const r of summary) {
      rows.push([
        `${formatSize(bytes)}, c=${concurrency}`,
        r.name,
        formatInt(r.rps.median),
        `${formatInt(r.rps.min)} – ${formatInt(r.rps.max)}`,
        formatRatio(r.rps.median / best.rps.median),
        formatRatio(r.rps.median / peer.rps.median),
        r.p99.median.toFixed(1),
        formatMiB(r.peakRss),
        `${r.left} (${r.cutOff} cut off)`,
      ]);
    }
    const ours = summary.find((r) => r.ours);
    // 1.2x at 1 MiB × 32, where the upload led multer by 1.16x to 1.36x before its own reader.
    const least = bytes === MiB && concurrency === 32 ? 1.2 : 1.0;
    const speedTarget = (what, other) => {
      const ratio = ours.rps.median / other.rps.median;
      targets.push([
        `${framework}${label}: ${formatSize(bytes)}, c=${concurrency}, requests/s ≥ ${least.toFixed(1)}x ${what} (${other.short})`,
        `${formatInt(ours.rps.median)} vs ${formatInt(other.rps.median)}, ${formatRatio(ratio)}; p99 ${ours.p99.median.toFixed(1)} vs ${other.p99.median.toFixed(1)} ms`,
        ratio >= least || (ratio >= 0.9 * least ? 'no (within noise)' : false),
      ]);
    };
    speedTarget('the best peer', best);
    if (peer !== best) speedTarget('the named peer', peer);
    // One server each, at its own rate: a faster server peaks higher for the same work per upload
    // (bench/analyses/uploads.md). The same-load table below compares the memory of the same work.
    const rateRatio = ours.rps.median / leanest.rps.median;
    targets.push([
      `${framework}${label}: ${formatSize(bytes)}, c=${concurrency}, peak RSS ≤ the leanest peer's (${leanest.short}) + 2 MiB`,
      `${formatMiB(ours.peakRss)} vs ${formatMiB(leanest.peakRss)}${leanest !== peer ? `; ${named.short}: ${formatMiB(peer.peakRss)}` : ''}`,
      ours.peakRss <= leanest.peakRss + 2 * MiB || (rateRatio >= 1.05 ? `no (one server at ${formatRatio(rateRatio)} its rate: the same load below)` : false),
    ]);
    targets.push([
      `${framework}${label}: ${formatSize(bytes)}, c=${concurrency}, no file left 1 s after the load is cut off`,
      `${ours.left} files (${ours.cutOff} requests cut off)`,
      ours.left === 0,
    ]);
  }
  out.push(
    table(
      ['Case', 'Contender', 'requests/s (median)', 'min – max', 'vs best peer', `vs ${named.short}`, 'p99 ms (median)', 'peak RSS (VmHWM)', 'files left 1 s after the cut'],
      rows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
}

function render({ small, equalLoad, large, aborts, load, appHeapSmall, band }, runSeconds) {
  const cpus = os.cpus();
  const out = [];
  const targets = [];
  out.push(`### Uploads: Express and Fastify (Node ${process.version})`, '');
  out.push(
    `Run on ${new Date().toISOString().slice(0, 10)} at commit ${commitOf()}: ${os.type()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model.trim()}, ` +
      `upload directories under \`${os.tmpdir()}\`. Small uploads: ${params.smallRounds} slices of ` +
      `${params.sliceSeconds} s per contender and case, interleaved; large uploads: ${params.largeRounds} samples of ` +
      `${params.concurrency} × ${formatSize(params.bytes)}; one abort case each; a load run of ${params.loadRuns} × ${params.loadSeconds} s. ` +
      `The run took ${runSeconds} s.${QUICK ? ' A --quick try-out: too short to quote.' : ''}`,
    '',
  );
  out.push('#### Method', '');
  out.push(
    '- Every sample starts a fresh server process (`bench/upload-server.mjs`, `--expose-gc`) running one ' +
      'contender as an app would write it: one file in the field `file`, streamed into its own upload directory, ' +
      'the answer `{ size }` read back from the disk (`fs.stat`), the file removed after the response (the adapters: ' +
      "the request's scope; @fastify/multipart: its `onResponse` hook; multer and formidable: an `fs.unlink` on the " +
      "response's `finish`). Limits: 2 GiB per file.",
    `- Small uploads: the servers of every contender run at once (one process each), and the client (this process) ` +
      `drives them in turn, ${params.sliceSeconds} s each, for ${params.smallRounds} rounds, each round starting at another ` +
      'contender, after a 1 s warm-up of each: the machine\'s load swings then hit every contender alike. In a slice the ' +
      'client keeps N requests in flight over N keep-alive connections; each body is one buffer. Requests/s counts answered ' +
      'uploads over the slice; p99 is the 99th percentile of their latencies. Every answer is checked (status 200, the size ' +
      'on disk). Medians over the slices. The load generator is this script\'s own (an `http.Agent` with N keep-alive ' +
      'connections, N requests in flight), not autocannon; it measures the same thing: answered requests per second at a ' +
      'fixed concurrency. After the last round, each server gets one more slice, cut off at its deadline as a load ' +
      "generator's end is (every connection destroyed, requests in flight included, some mid-body): the files left in " +
      "its upload directory 1 s later are counted. Peak RSS is each server's `VmHWM` (`process.resourceUsage().maxRSS`) " +
      'over the whole case, its warm-up included: every contender\'s server starts fresh for each case.',
    `- Large uploads: ${params.concurrency} uploads of ${formatSize(params.bytes)} at once over fresh connections, each body ` +
      `generated as it is sent (a random ${formatSize(params.chunk)} block repeated, backpressure honoured). Before them: a ` +
      `warm-up upload, \`sync\`, a scratch file of the total size written and deleted (the VM's balloon), \`gc()\` and the RSS ` +
      "noted. Peak RSS growth is `process.resourceUsage().maxRSS` after the uploads minus that RSS.",
    `- Abort: the client declares ${formatSize(params.bytes)}, sends ${formatSize(params.abortAt)}, waits 300 ms and ` +
      `destroys the connection; files left in the upload directory and descriptors held on them, ` +
      `${params.abortChecks.map((t) => `${t / 1000} s`).join(' and ')} later.`,
    `- Load run: one server of the Fastify adapter, ${params.loadRuns} runs of ${params.loadSeconds} s back to back, ` +
      `${params.loadConcurrency} uploads of ${formatSize(params.loadBytes)} in flight; 2 s after each run, its RSS as it is, ` +
      'then after `gc()`.',
    '- The machine is a shared, noisy 2-core VM, and the client shares it with the server: ratios within about 10-15% are noise.',
    '',
  );

  for (const framework of ['Express', 'Fastify']) smallTable(out, targets, framework, small, `#### ${framework}: small uploads`);

  out.push('#### The same load for every server', '');
  out.push(
    `Every case again, every server started afresh and driven on one schedule: 0.8x the requests/s of ` +
      `the slowest contender above, so that each keeps up (\`drive()\`'s \`rate\`: requests start on the schedule, at ` +
      `most N in flight), ${params.equalRounds} interleaved slices of ${params.sliceSeconds} s after a ${params.equalWarmup} s warm-up in slices interleaved the same way, on ` +
      `${params.equalServers} fresh server${params.equalServers > 1 ? 's' : ''} each, one set after the other, each set in another order (a balanced Latin square). Each server does the ` +
      "same work: its peak RSS (`VmHWM`, the median of its servers) is the memory that work costs it, and its CPU per request " +
      'what it costs in time. Above, a faster server takes more requests a second, and V8 grows its heap with the rate. ' +
      'Beside them, the floor: each peer with the library loaded and a manager made, none of it used (the library\'s fixed ' +
      "cost, about 1 MiB of V8's heap, which in a bare server crosses the line where V8 starts marking: bench/analyses/uploads.md). " +
      "A server's peak swings by 5 to 15 MiB with when V8 collects, hence the median of several. Where the floor alone peaks " +
      'past the target (the leanest peer + 2 MiB), the target is 0.9x the floor: at most its peak ÷ 0.9.',
    '',
  );
  out.push(
    table(
      ['Case', 'Contender', 'requests/s', 'CPU µs / request', 'peak RSS (VmHWM)', 'each server'],
      equalLoad.flatMap(({ bytes, concurrency, appHeap, results }) =>
        results.map((r) => [
          `${formatSize(bytes)}, c=${concurrency}${appHeap ? `, ${appHeap} MiB heap` : ''}`,
          `${r.framework}: ${r.short ?? r.name}`,
          formatInt(r.rps),
          formatInt(r.cpuMicros),
          formatMiB(r.peakRss),
          r.peaks.map((p) => (p / MiB).toFixed(1)).join(', '),
        ]),
      ),
      ['l', 'l', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  for (const { bytes, concurrency, appHeap, results } of equalLoad) {
    for (const framework of ['Express', 'Fastify']) {
      const ours = results.find((r) => r.framework === framework && r.ours);
      const peers = results.filter((r) => r.framework === framework && !r.ours && !r.floorOf);
      const leanest = peers.reduce((a, b) => (b.peakRss < a.peakRss ? b : a));
      const floor = results.find((r) => r.floorOf === leanest.id);
      const label = `${framework}: ${formatSize(bytes)}, c=${concurrency}${appHeap ? `, ${appHeap} MiB heap` : ''}, the same load`;
      targets.push(sameLoadRssTarget(label, ours, leanest, floor));
    }
  }

  out.push(`#### Large uploads: ${params.concurrency} × ${formatSize(params.bytes)} at once`, '');
  const largeRows = large.map((r) => ({
    ...r,
    speed: stats(r.samples, (s) => s.bytes / s.seconds / 1e6),
    cpu: stats(r.samples, (s) => (s.cpu / s.bytes) * GiB),
    growth: stats(r.samples, 'growth'),
  }));
  out.push(
    table(
      ['Contender', 'total MB/s (median)', 'min – max', 'server CPU s / GiB', 'peak RSS growth (median)', 'min – max'],
      largeRows.map((r) => [`${r.framework}: ${r.name}`, formatInt(r.speed.median), `${formatInt(r.speed.min)} – ${formatInt(r.speed.max)}`, r.cpu.median.toFixed(2), formatMiB(r.growth.median), `${formatMiB(r.growth.min)} – ${formatMiB(r.growth.max)}`]),
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  for (const framework of ['Express', 'Fastify']) {
    const ours = largeRows.find((r) => r.framework === framework && r.ours);
    const peers = largeRows.filter((r) => r.framework === framework && !r.ours);
    const leanest = peers.reduce((a, b) => (b.growth.median < a.growth.median ? b : a));
    targets.push([
      `${framework}: peak RSS growth at c=${params.concurrency} ≤ the leanest peer's (${leanest.id}) + 2 MiB`,
      `${formatMiB(ours.growth.median)} vs ${formatMiB(leanest.growth.median)}`,
      ours.growth.median <= leanest.growth.median + 2 * MiB,
    ]);
  }

  out.push(`#### With an application's heap: ${params.appHeapMiB} MiB of live objects in every server`, '');
  out.push(
    `Every server holds ${params.appHeapMiB} MiB of live objects of its own before it starts (\`TFM_BENCH_APP_HEAP_MIB\`), as a real ` +
      "service does (its routes, configuration, caches); the rest as above. Why it changes the figures: bench/analyses/uploads.md, " +
      '"V8\'s marking threshold".',
    '',
  );
  for (const framework of ['Express', 'Fastify']) smallTable(out, targets, framework, appHeapSmall, `##### ${framework}`, `, ${params.appHeapMiB} MiB heap`);
  out.push(`#### Large uploads by the size of the application's heap: ${params.concurrency} × ${formatSize(params.bandBytes)} at once`, '');
  out.push(
    `${params.bandRounds} interleaved samples per contender and heap, as the large uploads above; "major GCs" counts the old generation's ` +
      'collections during the uploads (`PerformanceObserver`, `gc` entries of kind major), the median of the samples.',
    '',
  );
  const bandRows = [];
  for (const { mib, results } of band) {
    for (const r of results) {
      const speed = stats(r.samples, (x) => x.bytes / x.seconds / 1e6);
      bandRows.push([
        `${mib} MiB`,
        `${r.framework}: ${r.short}`,
        formatInt(speed.median),
        `${formatInt(speed.min)} – ${formatInt(speed.max)}`,
        stats(r.samples, (x) => (x.cpu / x.bytes) * GiB).median.toFixed(2),
        formatInt(stats(r.samples, 'majorGcs').median),
        formatMiB(stats(r.samples, 'growth').median),
      ]);
    }
  }
  out.push(
    table(['Application heap', 'Contender', 'total MB/s (median)', 'min – max', 'server CPU s / GiB', 'major GCs', 'peak RSS growth'], bandRows, ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    '',
  );

  out.push(`#### Client abort after ${formatSize(params.abortAt)}`, '');
  out.push(
    table(
      ['Contender', ...params.abortChecks.map((t) => `files left after ${t / 1000} s (bytes)`), `upload files still open at ${params.abortChecks.at(-1) / 1000} s`],
      CONTENDERS.map((c) => {
        const a = aborts[c.id];
        return [`${c.framework}: ${c.name}`, ...a.checks.map((k) => `${k.count} (${formatSize(k.bytes)})${k.alive ? '' : ', server crashed'}`), heldText(a.checks.at(-1).held)];
      }),
      ['l', ...params.abortChecks.map(() => 'r'), 'l'],
    ),
    '',
  );
  for (const c of CONTENDERS.filter((x) => x.ours)) {
    const last = aborts[c.id].checks.at(-1);
    targets.push([`${c.framework}: no partial file or descriptor after a client abort`, `${last.count} files, ${heldText(last.held)}`, last.count === 0 && (last.held ?? []).length === 0]);
  }

  out.push(`#### Load run: the Fastify adapter, ${params.loadRuns} × ${params.loadSeconds} s, c=${params.loadConcurrency}, ${formatSize(params.loadBytes)} uploads`, '');
  out.push(
    table(
      ['Run', 'requests/s', 'p99 ms', 'RSS after the run', 'RSS after gc()', 'files left'],
      load.map((r, i) => [String(i + 1), formatInt(r.rps), r.p99.toFixed(1), formatMiB(r.rss), formatMiB(r.afterGc), String(r.left)]),
      ['r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  const growth = load.at(-1).rss / load[0].rss;
  targets.push([
    `Fastify load run: RSS after run ${params.loadRuns} within 10% of after run 1`,
    `${formatMiB(load.at(-1).rss)} vs ${formatMiB(load[0].rss)}, ${formatRatio(growth)} (after gc(): ${formatMiB(load.at(-1).afterGc)} vs ${formatMiB(load[0].afterGc)})`,
    growth <= 1.1,
  ]);

  out.push('#### Targets', '', targetsTable(targets), '');
  return `${out.join('\n')}\n`;
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
