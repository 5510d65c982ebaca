// The cost gate's upload rows (bench/gate.mjs): the Express and Fastify upload servers of this
// build and of the base build, beside their peers (multer, formidable; @fastify/multipart's
// `saveRequestFiles()`), at 10 KiB and 1 MiB, 1 and 32 at once. Each sample is a fresh server (a
// process of its own, bench/upload-server.mjs) driven through the four cases in turn; samples are
// interleaved round by round. Per case: requests/s, the server's CPU time per request (every
// thread's: the steadier figure on a shared machine, which the gate compares) and its peak RSS
// (sampled every 5 ms from the case's start, after a collection). The floor is a bare server that
// pipes each request's body to a file: no framework, no multipart parser.
import fs from 'node:fs';
import path from 'node:path';
import { formatRatio, median, MiB } from './lib.mjs';
import { control, drive, startServer } from './upload-client.mjs';

const KiB = 1024;
const UPLOAD_CASES = [
  { bytes: 10 * KiB, concurrency: 1 },
  { bytes: 10 * KiB, concurrency: 32 },
  { bytes: MiB, concurrency: 1 },
  { bytes: MiB, concurrency: 32 },
];
const SLICE_SECONDS = 0.75;

/** The frameworks: the library's upload, and its peers there. */
export const FRAMEWORKS = [
  { name: 'Express', ours: 'express-upload', peers: { multer: 'multer', formidable: 'formidable' } },
  { name: 'Fastify', ours: 'fastify-upload', peers: { 'fastify-save': '@fastify/multipart `saveRequestFiles()`' } },
];

/** A server with no framework and no multipart parser: each request's body piped to a file. */
const FLOOR = 'floor';

/** Requests/s at least this share of the best peer's; at 1 MiB × 32, {@link RPS_TARGET_BUSY}. */
const RPS_TARGET = 1.0;
const RPS_TARGET_BUSY = 1.2;
/** Peak RSS at most the leanest peer's plus this many MiB. */
const RSS_TARGET_MIB = 2;

const caseName = ({ bytes, concurrency }) => `${bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`} × ${concurrency}`;

/** One sample of `contender`: a fresh server through every case. */
async function sample(contender, baseDist, place) {
  const dir = fs.mkdtempSync(path.join(place, 'tempfile-manager-gate-uploads-'));
  const env = baseDist ? { ...process.env, TFM_BENCH_BASELINE: baseDist } : process.env;
  let server;
  try {
    server = await startServer(contender, dir, env);
    await drive(server.port, 64 * KiB, 1, 0.2); // loads and compiles the code
    const results = [];
    for (const c of UPLOAD_CASES) {
      await control(server, '/baseline', 'POST');
      // The floor answers with the size of the whole body it stored, multipart framing included.
      const slice = await drive(server.port, c.bytes, c.concurrency, SLICE_SECONDS, { check: contender !== FLOOR });
      if (slice.failures > 0) throw new Error(`${contender}: ${slice.failures} uploads failed`);
      const stats = await control(server, '/stats');
      results.push({ rps: slice.rps, cpuMicros: (stats.cpu * 1e6) / slice.count, peakMiB: stats.sampledPeak / MiB });
    }
    return results;
  } finally {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Medians per contender and case, `rounds` interleaved samples each. Contenders are upload-server
 * ids; `<id>@baseline` runs on `baseDist`.
 */
export async function measureUploads(contenders, baseDist, place, rounds) {
  const samples = Object.fromEntries(contenders.map((id) => [id, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const id = contenders[(round + k) % contenders.length];
      samples[id].push(await sample(id, id.endsWith('@baseline') ? baseDist : undefined, place));
    }
  }
  const medians = {};
  for (const [id, runs] of Object.entries(samples)) {
    medians[id] = UPLOAD_CASES.map((_, i) => ({
      rps: median(runs.map((r) => r[i].rps)),
      cpuMicros: median(runs.map((r) => r[i].cpuMicros)),
      peakMiB: median(runs.map((r) => r[i].peakMiB)),
    }));
  }
  return medians;
}

/** The contenders to sample: each framework's upload on this build (and on the base's), and its peers. */
export function uploadContenders(withBase) {
  return [...FRAMEWORKS.flatMap((f) => [f.ours, ...(withBase ? [`${f.ours}@baseline`] : []), ...Object.keys(f.peers)]), FLOOR];
}

/**
 * The report's rows and the gate's failures: a framework's upload slower than the base build's by
 * CPU per request (the geometric mean of its four cases under `minSpeed`), or a peak RSS more than
 * a tenth (at least 2 MiB) over the base's (the mean of its four cases). One case of a short sample
 * varies by a tenth with the machine's load, its peak RSS by more, with the collector's timing. The
 * targets against the peers are shown: a fresh server's first seconds weigh its code's compiling,
 * and a peer's peak its rate, so bench/uploads.mjs judges them (warmed servers, and the same load
 * for every server).
 */
export function uploadRows(medians, withBase, minSpeed) {
  const rows = [];
  const failures = [];
  for (const f of FRAMEWORKS) {
    if (withBase) {
      const speeds = UPLOAD_CASES.map((_, i) => medians[`${f.ours}@baseline`][i].cpuMicros / medians[f.ours][i].cpuMicros);
      const speed = Math.exp(speeds.reduce((sum, x) => sum + Math.log(x), 0) / speeds.length);
      if (speed < minSpeed) failures.push(`uploads, ${f.name}: ${formatRatio(speed)} the base build's speed (CPU per request, the four cases' geometric mean), under ${minSpeed}`);
      const mean = (id) => medians[id].reduce((sum, x) => sum + x.peakMiB, 0) / UPLOAD_CASES.length;
      const [mine, theirs] = [mean(f.ours), mean(`${f.ours}@baseline`)];
      if (mine > theirs + Math.max(2, theirs / 10)) failures.push(`uploads, ${f.name}: peak RSS ${mine.toFixed(1)} MiB (the four cases' mean) against ${theirs.toFixed(1)} for the base build`);
    }
    UPLOAD_CASES.forEach((c, i) => {
      const mine = medians[f.ours][i];
      const theirs = withBase ? medians[`${f.ours}@baseline`][i] : undefined;
      const peers = Object.entries(f.peers).map(([id, name]) => ({ name, ...medians[id][i] }));
      const best = peers.reduce((a, b) => (b.rps > a.rps ? b : a));
      const leanest = peers.reduce((a, b) => (b.peakMiB < a.peakMiB ? b : a));
      const what = `${f.name}, ${caseName(c)}`;
      const speed = theirs ? theirs.cpuMicros / mine.cpuMicros : undefined;
      const rpsTarget = c.bytes === MiB && c.concurrency === 32 ? RPS_TARGET_BUSY : RPS_TARGET;
      const rpsMet = mine.rps / best.rps >= rpsTarget;
      const rssMet = mine.peakMiB <= leanest.peakMiB + RSS_TARGET_MIB;
      rows.push([
        what,
        `${Math.round(mine.rps)} (${Math.round(mine.cpuMicros)} µs)`,
        theirs ? `${Math.round(theirs.rps)} (${Math.round(theirs.cpuMicros)} µs)` : '–',
        speed === undefined ? '–' : formatRatio(speed),
        `${formatRatio(mine.rps / best.rps)} ${best.name}`,
        formatRatio(mine.rps / medians[FLOOR][i].rps),
        `${mine.peakMiB.toFixed(1)} / ${theirs ? theirs.peakMiB.toFixed(1) : '–'} / ${leanest.peakMiB.toFixed(1)} ${leanest.name}`,
        `${rpsTarget}× ${rpsMet ? 'met' : 'not met'}; +${RSS_TARGET_MIB} MiB ${rssMet ? 'met' : 'not met'} (shown; judged by bench/uploads.mjs)`,
      ]);
    });
  }
  return { rows, failures };
}
