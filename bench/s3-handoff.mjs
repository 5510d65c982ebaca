// Handoff through an object store, against the bare SDK floor, on the Ceph RGW the S3 tests use:
// `file.handoff({ ttlMs, store })` + `mgr.claim(ticket)` + `claimed.consume()` of 1 MiB and 64 MiB
// files (the claim streamed to a temp file of another root, its digest checked) against lib-storage
// `Upload` + `GetObject` streamed to a file + `DeleteObject`, the same with the lease's fence (the
// fenced floor) and with the contract's check too (the checked floor: the bytes hashed with SHA-256
// as they go up and again as they come down), interleaved; then the peak RSS of the
// handing-off and of the claiming process for a 1 GiB object against 64 MiB, each in a child.
//
//   node bench/s3-handoff.mjs            writes bench/results/node-<major>/s3-handoff.md and prints it
//   node bench/s3-handoff.mjs --quick    fewer samples, to try it out (printed, not written)
//
// It needs the gateway (`node scripts/rgw.mjs start`); without one it says so and exits 3.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { benchClient, BUCKET, ensureBucket, gateway, makeContender, NAMES, reclaimDeleted, SHORT } from './s3-contenders.mjs';
import { formatRatio, GiB, median, MiB, phaseClock, primePageCache, runChild, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { commitOf } from './report.mjs';

const CHILD = fileURLToPath(new URL('./s3-rss-child.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const QUICK = process.argv.includes('--quick');

const SIZES = [
  { bytes: MiB, rounds: QUICK ? 3 : 15, ops: QUICK ? 3 : 8, warmup: 3 },
  { bytes: 64 * MiB, rounds: QUICK ? 2 : 13, ops: 1, warmup: 1 },
];
const IDS = ['lib', 'floor', 'floor-8x2', 'floor-fenced', 'floor-checked'];
const RSS_SIZES = [64 * MiB, GiB];
const RSS_RUNS = QUICK ? 1 : 3;
const RSS_MODES = ['lib-handoff', 'lib-claim', 'floor-put', 'floor-get'];
// "Flat": the 1 GiB peak at most this much above the 64 MiB peak of the same side: two of the
// store's 8 MiB parts, the most one upload holds; memory that grew with the object would add
// hundreds of MiB for 16 times the bytes.
const FLAT_MIB = 16;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-s3-bench-'));
const runId = randomBytes(4).toString('hex');

async function main() {
  const found = await gateway();
  if (!('state' in found)) {
    console.error(`bench/s3-handoff.mjs needs the S3 gateway the tests use: ${found.reason}.`);
    process.exitCode = 3; // bench/standalone-suites.mjs: not run here
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  const { state } = found;
  try {
    const setup = benchClient(state);
    await ensureBucket(setup.client);
    const reclaim = () => {
      const why = reclaimDeleted(state);
      if (why) console.error(`could not free deleted objects in the gateway (${why}): a run uploads about 10 GiB, which RGW keeps for 2 hours`);
    };
    reclaim();
    primePageCache(path.join(root, 'prime'), GiB);
    const speed = [];
    for (const size of SIZES) {
      const run = await sampleSize(state, size);
      reclaim();
      speed.push(run);
      console.error(`${size.bytes / MiB} MiB: ${run.results.map((r) => `${r.id} ${r.mibps.median.toFixed(1)} MiB/s`).join(', ')}`);
    }
    const probe = await probeCost(state);
    const rss = await sampleRss(reclaim);
    console.error(`rss: ${JSON.stringify(rss)}`);
    const section = render({ speed, probe, rss, state });
    if (!QUICK) {
      fs.mkdirSync(RESULTS, { recursive: true });
      fs.writeFileSync(path.join(RESULTS, 's3-handoff.md'), section);
    }
    console.log(section);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Every contender at one size, interleaved round-robin; per-sample MiB/s, phase times, requests. */
async function sampleSize(state, { bytes, rounds, ops, warmup }) {
  const content = randomBytes(bytes);
  const contenders = IDS.map((id) => {
    const { client, requests } = benchClient(state);
    const prefix = `bench-${runId}/${bytes}/${id}/`;
    const dir = path.join(root, `${bytes}-${id}`);
    return { id, name: NAMES[id], short: SHORT[id], state: makeContender(id, { dir, client, prefix, bytes: content }), requests };
  });
  for (const c of contenders) {
    await cycles(c.state, warmup); // JIT, sockets, and the library's one probe of the store
    c.requests.clear();
  }
  const sampled = await sampleInterleaved(contenders, { rounds, sample: (c) => cycles(c.state, ops) });
  for (const c of contenders) await c.state.close();
  const results = sampled.map((r) => {
    const n = r.samples.length * ops;
    const perSecond = r.samples.map((s) => (ops * bytes) / MiB / s.seconds);
    return {
      ...r,
      mibps: { median: median(perSecond), min: Math.min(...perSecond), max: Math.max(...perSecond) },
      msPerCycle: median(r.samples.map((s) => (s.seconds * 1e3) / ops)),
      cpuMsPerCycle: median(r.samples.map((s) => s.cpuMs / ops)),
      // The median of every cycle's own time: a stall of the machine moves a sample's mean, hardly this.
      p50Ms: median(r.samples.flatMap((s) => s.each)),
      phaseMs: Object.fromEntries(r.state.phases.map((p) => [p, median(r.samples.map((s) => s.phaseMs[p] / ops))])),
      requests: [...r.requests].map(([command, { n: count, ns }]) => ({ command, perCycle: count / n, ms: Number(ns) / 1e6 / count })),
    };
  });
  return { bytes, rounds, ops, results };
}

async function cycles(state, n) {
  const { phaseNs, mark } = phaseClock(state.phases);
  let ns = 0n;
  let cpuUs = 0;
  const each = [];
  for (let i = 0; i < n; i++) {
    const item = await state.create();
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await state.cycle(item, mark);
    const took = process.hrtime.bigint() - start;
    ns += took;
    each.push(Number(took) / 1e6);
    const used = process.cpuUsage(cpu);
    cpuUs += used.user + used.system;
  }
  return { seconds: Number(ns) / 1e9, each, cpuMs: cpuUs / 1e3, phaseMs: Object.fromEntries(Object.entries(phaseNs).map(([p, v]) => [p, Number(v) / 1e6])) };
}

/** What a process's first conditional replace costs: the store's one probe of how it compares ETags. */
async function probeCost(state) {
  const runs = [];
  for (let i = 0; i < (QUICK ? 1 : 5); i++) runs.push(await runChild(CHILD, ['probe', path.join(root, `probe-${i}`), `bench-${runId}/probe-${i}/`]));
  return { firstMs: median(runs.map((r) => r.firstMs)), laterMs: median(runs.map((r) => r.laterMs)), requests: runs[0].requests };
}

/** Peak RSS of each side, each run in a child of its own, 64 MiB and 1 GiB, interleaved. */
async function sampleRss(reclaim) {
  const out = {};
  for (let run = 0; run < RSS_RUNS; run++) {
    for (const size of run % 2 ? [...RSS_SIZES].reverse() : RSS_SIZES) {
      const dir = path.join(root, `rss-${run}-${size}`);
      const prefix = `bench-${runId}/rss-${run}-${size}/`;
      const record = (mode, result) => ((out[`${mode}:${size}`] ??= []).push(result.maxRssKiB));
      const handed = await runChild(CHILD, ['lib-handoff', path.join(dir, 'api'), prefix, String(size)]);
      record('lib-handoff', handed);
      record('lib-claim', await runChild(CHILD, ['lib-claim', path.join(dir, 'worker'), prefix, JSON.stringify(handed.ticket)]));
      const put = await runChild(CHILD, ['floor-put', path.join(dir, 'floor-api'), prefix, String(size)]);
      record('floor-put', put);
      record('floor-get', await runChild(CHILD, ['floor-get', path.join(dir, 'floor-worker'), prefix, put.key]));
      fs.rmSync(dir, { recursive: true, force: true });
      reclaim();
    }
  }
  const idle = [];
  for (let run = 0; run < RSS_RUNS; run++) idle.push((await runChild(CHILD, ['idle', path.join(root, `idle-${run}`), `bench-${runId}/idle/`])).maxRssKiB);
  const medians = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { median: median(v), min: Math.min(...v), max: Math.max(...v) }]));
  return { medians, idle: median(idle) };
}

// ---------------------------------------------------------------------------------------------

const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

function render({ speed, probe, rss }) {
  const cpus = os.cpus();
  const out = [];
  out.push(`### Handoff through an object store (Node ${process.version})`, '');
  out.push(
    `Run on ${new Date().toISOString().slice(0, 10)} at commit ${commitOf()}: ${os.type()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model.trim()}, ` +
      `local files under \`${os.tmpdir()}\`; the object store is the single-node Ceph RGW of \`node scripts/rgw.mjs start\` ` +
      '(one monitor, one OSD with bluestore on a sparse file on the same disk, the gateway on 127.0.0.1), on the same ' +
      'machine as the bench. The machine has 2 cores and is shared with other work running at the same time: the gateway, ' +
      'its OSD and the bench compete for them, and the figures move from run to run; only ratios within this run mean much. ' +
      speed.map((s) => `${s.bytes / MiB} MiB: ${s.rounds} samples of ${s.ops} cycle${s.ops > 1 ? 's' : ''} per contender`).join('; ') +
      ', interleaved; random bytes.',
    '',
  );
  out.push('#### Method', '');
  out.push(
    '- One cycle: a file already on the disk of one "host" (an API\'s root; made right before the cycle, untimed: the ' +
      "library's with `await api.write(bytes)`, the floor's with `fs.promises.writeFile`) goes through the bucket " +
      'to another "host" (a worker\'s root, in a directory of its own: no ' +
      'shared disk), and everything is removed afterwards. The library: `file.handoff({ ttlMs, store })` (the file, ' +
      "whose size `write()` knows and which is at most 8 MiB, read into memory and sent in one PutObject with the ticket's " +
      "binding in its metadata; larger files stream through lib-storage's `Upload`; the bytes hashed with sha256 for the " +
      "ticket's digest: a file `write()` had hashed already would be hashed again here; the local file removed), " +
      '`worker.claim(ticket)` (the lease created with `If-None-Match: *` while the data streams, at the same time, into a ' +
      "temp file of the worker's root by its `write()`, the bytes kept because the claim created the lease within 1 s of " +
      "its GET (docs/object-store.md); the binding checked from the GET's headers, the size and sha256 " +
      'checked), `claimed.consume()` (the lease written `consumed` with `If-Match` while the data object is deleted, then ' +
      "the local copy removed). The consumed lease, a tombstone of about 150 bytes that turns a redelivered ticket away, " +
      "stays for the store's sweep, as in use: one GetObject and one DeleteObject per entry that the cycle does not pay " +
      '(the sweep is off here, below).',
    "- The floor is the bare SDK doing the same transfer: lib-storage's `Upload` of a read stream of the file " +
      '(one PutObject below its part size, multipart above it) and the local file unlinked; `GetObject` piped into ' +
      '`fs.createWriteStream` on the other host; `DeleteObject` and the downloaded copy unlinked. No digest, no ' +
      "lease, no ticket. A reference runs the floor with the library's part size and concurrency (8 MiB parts, 2 in " +
      'flight; lib-storage defaults to 5 MiB parts, 4 in flight). The fenced floor adds the fence a lease needs, bare: ' +
      'the lease object created with `If-None-Match: *` beside the `GetObject`, and written `consumed` with `If-Match` ' +
      "(the ETag its creation returned) beside the `DeleteObject`, as the library overlaps them; no digest, no ticket. " +
      'The checked floor adds, bare, the check the handoff contract promises (the claimer gets the bytes that were ' +
      'handed off, or an error): the file read through a SHA-256 hash as it streams into the `Upload`, the `GetObject` ' +
      'hashed as it streams into its file, the two digests compared; no ticket, no binding. The difference between the ' +
      'two fenced floors is what the check costs.',
    '- Contenders are interleaved round-robin (round r starts with contender r) after untimed warm-up cycles, which ' +
      "also take the library's one probe per process of how the store compares ETags (below); the managers' " +
      'background sweep is off (`sweepIntervalMs: 0`: it lists the prefix every 3 × `staleMs`, not per handoff). Each contender has its ' +
      'own `S3Client` (one keep-alive agent each). Figures are medians over the samples; "MiB/s" is the file\'s size ' +
      'over the time of a cycle (up, down, removed), so a 1 MiB cycle of 40 ms is 25 MiB/s.',
    '- "ms / cycle" is the median over the samples of a sample\'s time over its cycles; "one cycle, p50" is the median ' +
      "of every cycle's own time over all samples, which a stall of the machine moves less. At 1 MiB the two floor rows " +
      'make the same single PutObject: how far apart they are is the noise of the run.',
    '- Requests: every request of a contender\'s client is counted and timed by a middleware of the SDK, to its ' +
      "response's headers (a GetObject's body streams after that, so its time is the time to the first byte).",
    '- The gateway keeps the data of a deleted object for two hours before its garbage collector frees it, and the ' +
      "test gateway's OSD holds 20 GiB, shared with everyone using it; a run uploads and deletes about 10 GiB, so the " +
      'bench runs the collector (`radosgw-admin gc process --include-all`) after each phase, outside the timed cycles.',
    `- Memory: each side runs in a child process of its own (\`bench/s3-rss-child.mjs\`), which prints ` +
      '`process.resourceUsage().maxRSS` (its peak resident set) at its end: the library\'s API side writes the file ' +
      "with `write()` from a stream (1 MiB chunks) and hands it off; the worker side claims the ticket and consumes it; " +
      "the floor's two sides write the file with a write stream and `Upload` it, and `GetObject` it to a file and " +
      `delete it. 64 MiB and 1 GiB, ${RSS_RUNS} run${RSS_RUNS > 1 ? 's' : ''} each (medians), against a child that only loads ` +
      'the library and the SDK and lists the bucket. "Flat" means: the 1 GiB peak is at most ' +
      `${FLAT_MIB} MiB above the 64 MiB peak of the same side (two of the store's 8 MiB parts, the most one upload ` +
      'holds in memory; memory that grew with the object would add hundreds of MiB for 16 times the bytes).',
    '',
  );

  out.push('#### Targets', '');
  const rows = speed.map((s) => {
    const lib = s.results.find((r) => r.id === 'lib');
    const floor = s.results.find((r) => r.id === 'floor');
    const ratio = lib.mibps.median / floor.mibps.median;
    return [
      `handoff + claim + consume of ${s.bytes / MiB} MiB at 0.8x the floor or more`,
      `${formatRatio(ratio)} (${fmtMs(lib.msPerCycle)} against ${fmtMs(floor.msPerCycle)} ms per cycle, medians of the samples); ` +
        `${formatRatio(floor.p50Ms / lib.p50Ms)} by the p50 of one cycle (${fmtMs(lib.p50Ms)} against ${fmtMs(floor.p50Ms)} ms)`,
      ratio >= 0.8,
    ];
  });
  for (const s of speed) {
    const lib = s.results.find((r) => r.id === 'lib');
    const fenced = s.results.find((r) => r.id === 'floor-fenced');
    const checked = s.results.find((r) => r.id === 'floor-checked');
    const ratio = lib.mibps.median / fenced.mibps.median;
    const checkedRatio = lib.mibps.median / checked.mibps.median;
    rows.push([
      `handoff + claim + consume of ${s.bytes / MiB} MiB at 0.9x the fenced floor or more, else at 0.9x the checked floor (the least a handoff that checks its bytes does)`,
      `${formatRatio(ratio)} the fenced floor (${fmtMs(lib.msPerCycle)} against ${fmtMs(fenced.msPerCycle)} ms per cycle, medians of the samples); ` +
        `${formatRatio(checkedRatio)} the checked floor (${fmtMs(checked.msPerCycle)} ms)`,
      ratio >= 0.9 ? true : checkedRatio >= 0.9 ? 'yes, against the checked floor' : false,
    ]);
  }
  for (const side of [
    ['handing-off', 'lib-handoff', 'floor-put'],
    ['claiming', 'lib-claim', 'floor-get'],
  ]) {
    const small = rss.medians[`${side[1]}:${64 * MiB}`].median;
    const big = rss.medians[`${side[1]}:${GiB}`].median;
    const floorBig = rss.medians[`${side[2]}:${GiB}`].median;
    rows.push([
      `peak RSS of the ${side[0]} process flat for a 1 GiB object`,
      `${mib(big)} at 1 GiB, ${mib(small)} at 64 MiB (${big - small >= 0 ? '+' : ''}${((big - small) / 1024).toFixed(1)} MiB); the floor's ${mib(floorBig)} at 1 GiB`,
      big - small <= FLAT_MIB * 1024,
    ]);
  }
  out.push(targetsTable(rows), '');

  for (const s of speed) {
    const floor = s.results.find((r) => r.id === 'floor');
    out.push(`#### ${s.bytes / MiB} MiB per cycle`, '');
    out.push(
      table(
        ['Contender', 'MiB/s (median)', 'min – max', 'vs floor', 'ms / cycle', 'one cycle, p50 ms', 'p50 vs floor', 'CPU ms / cycle', 'phases, ms (median)'],
        s.results.map((r) => [
          r.name,
          r.mibps.median.toFixed(1),
          `${r.mibps.min.toFixed(1)} – ${r.mibps.max.toFixed(1)}`,
          formatRatio(r.mibps.median / floor.mibps.median),
          fmtMs(r.msPerCycle),
          fmtMs(r.p50Ms),
          formatRatio(floor.p50Ms / r.p50Ms),
          fmtMs(r.cpuMsPerCycle),
          r.state.phases.map((p) => `${p} ${fmtMs(r.phaseMs[p])}`).join(', '),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      ),
      '',
    );
    out.push(
      table(
        ['Contender', 'requests per cycle', 'by command: count × mean ms to the headers'],
        s.results.map((r) => [
          r.short,
          r.requests.reduce((a, q) => a + q.perCycle, 0).toFixed(0),
          r.requests
            .sort((a, b) => b.perCycle * b.ms - a.perCycle * a.ms)
            .map((q) => `${q.command.replace(/Command$/, '')} ${Number(q.perCycle.toFixed(2))} × ${fmtMs(q.ms)}`)
            .join(', '),
        ]),
        ['l', 'r', 'l'],
      ),
      '',
    );
  }

  out.push('#### Peak RSS (`maxRSS`), each side in a process of its own', '');
  const cell = (mode, size) => {
    const m = rss.medians[`${mode}:${size}`];
    return RSS_RUNS > 1 ? `${mib(m.median)} (${mib(m.min)} – ${mib(m.max)})` : mib(m.median);
  };
  out.push(
    table(
      ['Side', '64 MiB object', '1 GiB object', '1 GiB − 64 MiB'],
      [
        ['library, handing off (`write()` then `handoff({ store })`)', 'lib-handoff'],
        ['floor, uploading (write stream then `Upload`)', 'floor-put'],
        ['library, claiming (`claim()` then `consume()`)', 'lib-claim'],
        ['floor, downloading (`GetObject` to a file, `DeleteObject`)', 'floor-get'],
      ].map(([label, mode]) => [
        label,
        cell(mode, 64 * MiB),
        cell(mode, GiB),
        `${((rss.medians[`${mode}:${GiB}`].median - rss.medians[`${mode}:${64 * MiB}`].median) / 1024).toFixed(1)} MiB`,
      ]),
      ['l', 'r', 'r', 'r'],
    ),
    '',
    `A child that only loads the library and the SDK and lists the bucket peaks at ${mib(rss.idle)}.`,
    '',
  );

  out.push('#### Where the time goes', '');
  const lines = [];
  for (const s of speed) {
    const lib = s.results.find((r) => r.id === 'lib');
    const floor = s.results.find((r) => r.id === 'floor');
    const ref = s.results.find((r) => r.id === 'floor-8x2');
    const count = (r) => r.requests.reduce((a, q) => a + q.perCycle, 0);
    const small = lib.requests.filter((q) => !/UploadPart|CreateMultipart|CompleteMultipart/.test(q.command));
    lines.push(
      `- ${s.bytes / MiB} MiB: the library takes ${fmtMs(lib.msPerCycle)} ms a cycle, the floor ${fmtMs(floor.msPerCycle)} ms ` +
        `(${fmtMs(lib.msPerCycle - floor.msPerCycle)} ms more); ${count(lib).toFixed(0)} requests against ${count(floor).toFixed(0)}. ` +
        `The floor with the library's part size takes ${fmtMs(ref.msPerCycle)} ms. Requests other than the parts of a multipart upload, ` +
        `as the library makes them: ${small.map((q) => `${q.command.replace(/Command$/, '')} ${Number(q.perCycle.toFixed(2))} × ${fmtMs(q.ms)} ms`).join(', ')}.`,
    );
  }
  const writes = (r) => r.requests.filter((q) => /^(Put|Delete)Object/.test(q.command)).reduce((a, q) => a + q.perCycle, 0);
  const small = speed[0].results;
  const [libSmall, floorSmall] = ['lib', 'floor'].map((id) => small.find((r) => r.id === id));
  const big = speed.at(-1).results;
  const [libBig, floorBig, refBig] = ['lib', 'floor', 'floor-8x2'].map((id) => big.find((r) => r.id === id));
  lines.push(
    `- At ${speed[0].bytes / MiB} MiB the requests are the cost. The library writes to the store ${writes(libSmall).toFixed(0)} times a ` +
      `cycle (the data, the lease created and written \`consumed\`, the data's delete) where the floor writes ` +
      `${writes(floorSmall).toFixed(0)} times (the object, its delete). The lease's creation overlaps the download and the ` +
      "`consumed` write overlaps the delete, so a cycle waits on about one conditional write more than the floor's, and " +
      'its CPU pays for the two requests more and the two hashes (the digest made on the way up and checked on the way ' +
      "down), on a machine whose two cores the gateway and its OSD share. The lease and its fence cannot go without giving up a promise of docs/object-store.md. " +
      `At ${speed.at(-1).bytes / MiB} MiB the transfer dominates: the library's ` +
      `cycle uses ${fmtMs(libBig.cpuMsPerCycle)} ms of CPU (it hashes the bytes with sha256 on each side, the floor does not) ` +
      `against the floor's ${fmtMs(floorBig.cpuMsPerCycle)} and ${fmtMs(refBig.cpuMsPerCycle)} with the library's part size, ` +
      'and its extra requests are a few percent of the cycle.',
    "- How it got here (2026-11-25, 1 MiB): the first layout (a ticket object created after the data as the commit, " +
      'checked with a HEAD at the claim; the lease created before the download; `consume()` writing `consumed`, then ' +
      'deleting the ticket and the data, then the lease: 10 requests a cycle, 6 of them writes one after the other) ' +
      'measured 0.46x of the floor (177 against 80.7 ms a cycle, when a write took about 22 ms). Now the data object is ' +
      "the commit and carries the ticket's binding in its metadata, a claim of a file of at most 8 MiB creates the lease while it downloads " +
      '(the bytes kept only if the lease was created within 1 s of the GET; the sweep deletes a lease 2 s after its data), ' +
      "and `consume()` deletes the data while it writes the lease (a takeover of a stale lease copies " +
      'the data to a key of its own first, so that a holder taken over deletes only its own key); the consumed lease is ' +
      "left to the sweep. Looked at and left: the part size (8 MiB, 2 in flight, against lib-storage's 5 MiB, 4 in " +
      'flight: the reference row, within the noise of each other here), and the probe (below: once per process).',
  );
  lines.push(
    `- The probe: a process's first conditional replace of a lease first finds out how the store compares ETags ` +
      `(on an object of its own: ${probe.requests}); the first consume of a fresh process took ` +
      `${fmtMs(probe.firstMs)} ms, a later one ${fmtMs(probe.laterMs)} ms (medians of ${QUICK ? 1 : 5} processes). It is paid once per process and store, not per handoff.`,
  );
  out.push(...lines, '');
  return `${out.join('\n')}\n`;
}

await main();
