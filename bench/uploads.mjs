// Upload throughput, server peak RSS and client aborts: the Express adapter against multer 2 disk
// storage, formidable 3 and raw busboy; the Fastify adapter against @fastify/multipart's
// saveRequestFiles() and request.file() + pipeline(). Every server runs in a child process of its
// own (bench/upload-server.mjs), a fresh one per sample; the client is this process, sending a
// generated multipart body that is never held in memory.
//
//   node bench/uploads.mjs            writes bench/results/node-<major>/uploads.md and prints it
//   node bench/uploads.mjs --quick    fewer and smaller samples, to try it out (printed, not written)
//   node bench/uploads.mjs --profile <id>   one upload of <id> under the V8 CPU profiler
//   node bench/uploads.mjs --only a,b [--rounds N] [--no-c8] [--no-large] [--no-abort]
//                                     an experiment, written to uploads-experiment.md; with
//                                     UPLOAD_BENCH_DIST=<dir>/ the servers load the library from a
//                                     modified copy of dist/ (where its imports still resolve)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { formatInt, formatMiB, formatRatio, formatSize, GiB, MiB, primePageCache, sampleInterleaved, stats, table, targetsTable } from './lib.mjs';
import { flush } from './settle.mjs';

const SERVER = fileURLToPath(new URL('./upload-server.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));

const params = {
  bytes: 256 * MiB,
  c1Rounds: 5,
  c8Rounds: 3,
  concurrency: 8,
  abortAt: 128 * MiB,
  abortChecks: [1000, 5000],
  warmupBytes: 4 * MiB,
  largeBytes: 1024 * MiB,
  largeRounds: 2,
  chunk: MiB,
};
// For experiments: `--only id,id` runs some contenders; `--rounds N` sets the c=1 rounds; `--no-c8`,
// `--no-large`, `--no-abort` skip phases. Results then go to uploads-experiment.md.
const argValue = (name) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
};
const ONLY = argValue('--only')?.split(',');
const EXPERIMENT = ONLY !== undefined || ['--rounds', '--no-c8', '--no-large', '--no-abort'].some((a) => process.argv.includes(a));
if (argValue('--rounds')) params.c1Rounds = Number(argValue('--rounds'));
const QUICK = process.argv.includes('--quick');
if (QUICK) Object.assign(params, { bytes: 32 * MiB, c1Rounds: 2, c8Rounds: 1, abortAt: 16 * MiB, largeBytes: 64 * MiB, largeRounds: 1 });

const CONTENDERS = [
  { id: 'express-tmp', framework: 'Express', ours: true, name: '`tempScope(mgr)` + busboy + `req.tmp.write(fileStream)`' },
  { id: 'multer', framework: 'Express', name: 'multer 2 `diskStorage`, `.single()`' },
  { id: 'formidable', framework: 'Express', name: 'formidable 3 `form.parse(req)`, `uploadDir`' },
  { id: 'busboy-raw', framework: 'Express', name: 'raw busboy + `pipeline(file, fs.createWriteStream(p))`' },
  { id: 'fastify-tmp', framework: 'Fastify', ours: true, name: 'tempfile-manager/fastify + `request.file()` + `request.tmp.write(part.file)`' },
  { id: 'fastify-save', framework: 'Fastify', name: '@fastify/multipart `request.saveRequestFiles({ tmpdir })`' },
  { id: 'fastify-pipeline', framework: 'Fastify', name: '`request.file()` + `pipeline(part.file, fs.createWriteStream(p))`' },
];
// Experiments only (`--only`): the manager's write() in Fastify without the plugin's scope.
const EXPERIMENTAL = [
  { id: 'fastify-mgr', framework: 'Fastify', name: '`request.file()` + `mgr.write(part.file)`, no plugin (experiment)' },
  { id: 'fastify-iter', framework: 'Fastify', name: '`for await (const chunk of part.file) await handle.write(chunk)`, no library (experiment)' },
  { id: 'fastify-iterv', framework: 'Fastify', name: '`for await (const chunk of part.file) await handle.writev([chunk])`, no library (experiment)' },
];
// Abort cases only: the Express adapter with the example's `req.on('close')` guard added.
const ABORT_ONLY = [
  {
    id: 'express-tmp-guard',
    framework: 'Express',
    ours: true,
    name: "`tempScope(mgr)` + busboy + `req.tmp.write()`, with examples/express-upload's `req.on('close')` guard",
  },
];

const selected = (list) => (ONLY ? [...list, ...EXPERIMENTAL].filter((c, i, all) => ONLY.includes(c.id) && all.indexOf(c) === i) : list);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tempfile-manager-uploads-bench-'));
let dirs = 0;
const freshDir = (id) => fs.mkdtempSync(path.join(root, `${id}-${dirs++}-`));

// ---------------------------------------------------------------------------------------------
// The client: a multipart body generated as it is sent, from one random MiB sent over and over
// (never changed, so no write can see it half-updated), with backpressure.

const DATA = randomBytes(params.chunk);
const BOUNDARY = `----tfm-bench-${randomBytes(12).toString('hex')}`;
if (Buffer.concat([DATA, DATA]).includes(`--${BOUNDARY}`)) throw new Error('the boundary occurs in the data: run again');
const HEAD = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n',
);
const TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/**
 * Sends one upload of `bytes` file bytes; resolves { seconds, status, body } when the response
 * has been read. With `abortAt`, destroys the request once that many file bytes have left the
 * socket and the server had 300 ms to read them, and resolves { aborted: true }.
 */
function upload(port, bytes, abortAt) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let answered = false;
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/upload',
      agent: false,
      headers: {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(HEAD.length + bytes + TAIL.length),
      },
    });
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (abortAt === undefined && !answered) reject(err);
    });
    (async () => {
      req.write(HEAD);
      const limit = abortAt ?? bytes;
      for (let sent = 0; sent < limit && !answered && !req.destroyed; ) {
        const chunk = limit - sent >= DATA.length ? DATA : DATA.subarray(0, limit - sent);
        sent += chunk.length;
        if (!req.write(chunk)) await once(req, 'drain');
      }
      if (abortAt !== undefined) {
        while (req.socket && req.socket.writableLength > 0) await sleep(5);
        await sleep(300);
        req.destroy();
        resolve({ aborted: true });
        return;
      }
      if (!answered) req.end(TAIL);
    })().catch(reject);
  });
}

async function control(server, route, method = 'GET') {
  const res = await fetch(`http://127.0.0.1:${server.control}${route}`, { method });
  if (!res.ok) throw new Error(`${route}: ${res.status}`);
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// Servers

async function startServer(id, dir, env = process.env) {
  const child = spawn(process.execPath, ['--expose-gc', SERVER, id, dir], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let stdout = '';
  const ready = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code, signal) => reject(new Error(`server ${id} exited (${code ?? signal}): ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return {
    ...ready,
    child,
    alive: () => child.exitCode === null && child.signalCode === null,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Regular files under `dir` (recursively) and their bytes. */
function filesUnder(dir) {
  let count = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
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
async function throughputSample(c, concurrency, bytes = params.bytes) {
  const dir = freshDir(c.id);
  const server = await startServer(c.id, dir);
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

/** `--profile id`: one upload of `id` under the V8 profiler, its summary printed as Markdown. */
async function profileOne(id) {
  const c = [...CONTENDERS, ...ABORT_ONLY].find((x) => x.id === id);
  const dir = freshDir(id);
  const server = await startServer(id, dir, { ...process.env, UPLOAD_BENCH_PROFILE: '1' });
  try {
    await checkUpload(id, await upload(server.port, params.warmupBytes), params.warmupBytes);
    await waitForNoFiles(dir, 2000);
    await flush();
    primePageCache(path.join(root, 'prime'), params.bytes);
    await control(server, '/baseline', 'POST');
    const start = process.hrtime.bigint();
    const result = await upload(server.port, params.bytes);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await checkUpload(id, result, params.bytes);
    const s = await control(server, '/stats');
    const perGiB = (ms) => ((ms / 1000 / params.bytes) * GiB).toFixed(3);
    const section = [
      `### CPU profile of one ${formatSize(params.bytes)} upload: ${c.name} (Node ${process.version})`,
      '',
      `${formatInt(params.bytes / seconds / 1e6)} MB/s under the profiler (100 µs sampling); server CPU ${((s.cpu / params.bytes) * GiB).toFixed(2)} s / GiB.`,
      '',
      table(['Self time by origin', 's / GiB'], s.profile.groups.map(([g, ms]) => [g, perGiB(ms)]), ['l', 'r']),
      '',
      table(['Function', 's / GiB'], s.profile.functions.map(([f, ms]) => [`\`${f}\``, perGiB(ms)]), ['l', 'r']),
      '',
    ].join('\n');
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, `uploads-profile-${id}.md`), section);
    console.log(section);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (argValue('--profile')) return profileOne(argValue('--profile'));
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
  const contenders = selected(CONTENDERS);
  const c1 = await sampleInterleaved(contenders, { rounds: params.c1Rounds, sample: (c) => throughputSample(c, 1) });
  console.error(`c=1 done after ${elapsed()}`);
  const c8 = process.argv.includes('--no-c8')
    ? []
    : await sampleInterleaved(contenders, { rounds: params.c8Rounds, sample: (c) => throughputSample(c, params.concurrency) });
  console.error(`c=${params.concurrency} done after ${elapsed()}`);
  const large = process.argv.includes('--no-large')
    ? []
    : await sampleInterleaved(
        contenders.filter((c) => c.ours),
        { rounds: params.largeRounds, sample: (c) => throughputSample(c, 1, params.largeBytes) },
      );
  console.error(`${formatSize(params.largeBytes)} done after ${elapsed()}`);
  const aborts = {};
  if (!process.argv.includes('--no-abort')) {
    for (const c of selected([...CONTENDERS, ...ABORT_ONLY])) {
      await flush();
      aborts[c.id] = await abortSample(c);
    }
  }
  console.error(`aborts done after ${elapsed()}`);
  const summarize = (r) =>
    r && r.samples.length > 0
      ? {
          speed: stats(r.samples, (s) => s.bytes / s.seconds / 1e6),
          cpu: stats(r.samples, (s) => (s.cpu / s.bytes) * GiB),
          gcMs: stats(r.samples, (s) => (Object.values(s.gc ?? {}).reduce((a, k) => a + k.ms, 0) / s.bytes) * GiB),
          gcCounts: Object.fromEntries(
            ['minor', 'major', 'incremental'].map((k) => [k, stats(r.samples, (s) => ((s.gc?.[k]?.count ?? 0) / s.bytes) * GiB).median]),
          ),
          growth: stats(r.samples, 'growth'),
          sampledGrowth: stats(r.samples, 'sampledGrowth'),
          left: Math.max(...r.samples.map((s) => s.left)),
        }
      : undefined;
  const results = contenders.map((c) => ({
    ...c,
    c1: summarize(c1.find((r) => r.id === c.id)),
    c8: summarize(c8.find((r) => r.id === c.id)),
    large: summarize(large.find((r) => r.id === c.id)),
  }));
  const section = render(results, aborts, Math.round((Date.now() - started) / 1000));
  // A quick run is a try-out: printed only, never written over the results.
  if (!QUICK) {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, EXPERIMENT ? 'uploads-experiment.md' : 'uploads.md'), section);
  }
  console.log(section);
}

function heldText(held) {
  if (held === undefined) return 'n/a';
  if (held.length === 0) return 'none';
  return held.map((h) => `${formatSize(h.size)}${h.deleted ? ', deleted (the space stays in use)' : ''}`).join('; ');
}

const na = (x, f) => (x === undefined ? 'n/a' : f(x));
const speedCells = (m, best) => [
  na(m, (v) => formatInt(v.speed.median)),
  na(m, (v) => `${formatInt(v.speed.min)} – ${formatInt(v.speed.max)}`),
  na(m, (v) => (best ? formatRatio(v.speed.median / best) : '')),
  na(m, (v) => v.cpu.median.toFixed(2)),
];
const growthCell = (m) => na(m, (v) => `${formatMiB(v.growth.median)} (${formatMiB(v.sampledGrowth.median)})`);

function render(results, aborts, runSeconds) {
  const cpus = os.cpus();
  const out = [];
  out.push(`### Uploads: Express and Fastify (Node ${process.version})`, '');
  out.push(
    `Run on ${new Date().toISOString().slice(0, 10)}: ${os.type()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model.trim()}, ` +
      `upload directories under \`${os.tmpdir()}\`. Multipart bodies of ${formatSize(params.bytes)}; ` +
      `${params.c1Rounds} samples one at a time, ${params.c8Rounds} samples of ${params.concurrency} at once, per contender, ` +
      `interleaved; ${params.largeRounds} samples of ${formatSize(params.largeBytes)} for the adapters; one abort case each. ` +
      `The run took ${runSeconds} s.` +
      (EXPERIMENT ? ` Experiment run: ${process.argv.slice(2).join(' ')}.` : '') +
      (process.env.UPLOAD_BENCH_DIST ? ` The library from \`${process.env.UPLOAD_BENCH_DIST}\`, not dist/.` : ''),
    '',
  );
  out.push('#### Method', '');
  out.push(
    '- Every sample starts a fresh server process (`bench/upload-server.mjs`, `--expose-gc`) running one ' +
      'contender as an app would write it: the file streamed into its own upload directory, the answer ' +
      '`{ size }` read back from the disk (`fs.stat`) once the file is complete, the file removed after the ' +
      'response (the adapters: their scope; @fastify/multipart: its `onResponse` hook; the others: an ' +
      "`fs.unlink` on the response's `finish`). The Express adapter's server is " +
      'examples/express-upload/server.mjs cut down: busboy, one file, `req.tmp.write(stream, { maxBytes })`; no hash, ' +
      "no handoff, no abort guard (a separate abort case adds the example's guard). Parser limits: 2 GiB per file.",
    `- The client is the bench process: one connection per upload, \`content-length\` set, the body generated ` +
      `as it is sent (a random ${formatSize(params.chunk)} block repeated, backpressure honoured), never held in memory. ` +
      'MB/s is 10^6 file bytes per second from the first byte sent to the response read; with ' +
      `${params.concurrency} uploads at once it is their total over the span of all of them. "Server CPU s / GiB" is ` +
      "the server process's user + system CPU time (every thread) over the same span, per GiB uploaded: unlike MB/s " +
      'it hardly moves when other processes load the machine (the client shares its two cores).',
    '- Before the timed uploads: one warm-up upload of ' +
      `${formatSize(params.warmupBytes)} (loads and compiles the code), \`sync\` + 150 ms, a scratch file of the ` +
      "sample's size written and deleted (the VM's balloon; see bench/write-worker.mjs), then the server runs " +
      '`gc()` and records its RSS. Peak RSS growth is `process.resourceUsage().maxRSS` after the uploads minus ' +
      'that RSS; in parentheses, the largest `process.memoryUsage.rss()` sampled every 5 ms over the same span, minus ' +
      "it (maxRSS also holds the process's start-up peak, which could hide a smaller growth).",
    `- Abort: the client declares ${formatSize(params.bytes)}, sends ${formatSize(params.abortAt)} of file bytes, waits ` +
      'until its socket buffer is empty and 300 ms more, and destroys the connection. The bench then counts the ' +
      `regular files left in the contender's upload directory (recursively) ${params.abortChecks.map((t) => `${t / 1000} s`).join(' and ')} ` +
      "after the abort, the server's open descriptors against those before the upload, and which of them are " +
      'on files of the upload directory (from `/proc/self/fd`; a removed file held open still takes its space on ' +
      'the disk). A server that crashed is reported.',
    '- Garbage collection: the server counts its collections (`PerformanceObserver`, entry type `gc`) and their ' +
      'time between the baseline and the end of the uploads. With `--trace-incremental-marking`, most major ' +
      'collections here start while the JavaScript heap is far below its limit (about 9 of 24 MB), that is, from the ' +
      "pressure of the request's buffers (ArrayBuffers outside the heap) rather than from the heap filling up.",
    '- Files are not fsynced; the machine is a shared, noisy 2-core VM: MB/s ratios within about 10-15% are noise.',
    '',
  );

  const c8 = `c=${params.concurrency}`;
  for (const framework of ['Express', 'Fastify']) {
    const rows = results.filter((r) => r.framework === framework);
    if (rows.length === 0) continue;
    const peers = rows.filter((r) => !r.ours);
    const best = (key) => Math.max(...peers.filter((r) => r[key]).map((r) => r[key].speed.median));
    out.push(`#### ${framework}`, '');
    out.push(
      table(
        [
          'Contender',
          'c=1 MB/s (median)',
          'min – max',
          'vs best peer',
          'server CPU s / GiB',
          `${c8} total MB/s (median)`,
          'min – max',
          'vs best peer',
          'server CPU s / GiB',
          'peak RSS growth c=1 (sampled)',
          `${c8} (sampled)`,
        ],
        rows.map((r) => [r.name, ...speedCells(r.c1, best('c1')), ...speedCells(r.c8, best('c8')), growthCell(r.c1), growthCell(r.c8)]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
    const leftovers = rows.filter((r) => (r.c1?.left ?? 0) > 0 || (r.c8?.left ?? 0) > 0);
    if (leftovers.length > 0) {
      out.push(`Files still there 3 s after a successful upload: ${leftovers.map((r) => `${r.id} ${Math.max(r.c1?.left ?? 0, r.c8?.left ?? 0)}`).join(', ')}.`, '');
    }
  }

  {
    out.push('#### Garbage collection in the server (c=1, per GiB uploaded)', '');
    out.push(
      table(
        ['Contender', 'GC ms / GiB (median)', 'minor GCs / GiB', 'major GCs / GiB', 'incremental marking steps / GiB', 'server CPU s / GiB'],
        results.filter((r) => r.c1).map((r) => [
          r.name,
          formatInt(r.c1.gcMs.median),
          formatInt(r.c1.gcCounts.minor),
          formatInt(r.c1.gcCounts.major),
          formatInt(r.c1.gcCounts.incremental),
          r.c1.cpu.median.toFixed(2),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }

  const withLarge = results.filter((r) => r.large);
  if (withLarge.length > 0) {
    out.push('#### Peak RSS growth by upload size (the adapters, one at a time)', '');
    out.push(
      table(
        ['Contender', `${formatSize(params.bytes)}: MB/s`, 'peak RSS growth (sampled)', `${formatSize(params.largeBytes)}: MB/s`, 'peak RSS growth (sampled)', 'samples'],
        withLarge.map((r) => [
          r.name,
          na(r.c1, (v) => formatInt(v.speed.median)),
          growthCell(r.c1),
          formatInt(r.large.speed.median),
          growthCell(r.large),
          `${params.c1Rounds} / ${params.largeRounds}`,
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }

  const aborted = selected([...CONTENDERS, ...ABORT_ONLY]).filter((c) => aborts[c.id]);
  if (aborted.length > 0) {
    out.push(`#### Client abort after ${formatSize(params.abortAt)}`, '');
    out.push(
      table(
        [
          'Contender',
          ...params.abortChecks.flatMap((t) => [`files left after ${t / 1000} s (bytes)`, `descriptors open vs before, ${t / 1000} s`]),
          `upload files still open at ${params.abortChecks.at(-1) / 1000} s`,
          'partial file left',
        ],
        aborted.map((c) => {
          const a = aborts[c.id];
          const last = a.checks.at(-1);
          return [
            `${c.framework}: ${c.name}`,
            ...a.checks.flatMap((k) => [
              k.alive ? `${k.count} (${formatSize(k.bytes)})` : `${k.count} (${formatSize(k.bytes)}), server crashed`,
              k.fds === undefined ? 'n/a' : k.fds > 0 ? `+${k.fds}` : String(k.fds),
            ]),
            heldText(last.held),
            last.count > 0
              ? '**yes**'
              : a.checks[0].count > 0
                ? `no (after ${params.abortChecks.at(-1) / 1000} s; yes at ${params.abortChecks[0] / 1000} s)`
                : 'no',
          ];
        }),
        ['l', ...params.abortChecks.flatMap(() => ['r', 'r']), 'l', 'l'],
      ),
      '',
    );
  }

  out.push('#### Targets', '');
  const targets = [];
  for (const framework of ['Express', 'Fastify']) {
    const rows = results.filter((r) => r.framework === framework);
    const ours = rows.find((r) => r.ours);
    const peers = rows.filter((r) => !r.ours);
    if (!ours || peers.length === 0) continue;
    for (const key of ['c1', 'c8']) {
      if (!ours[key]) continue;
      const bestPeer = peers.reduce((a, b) => (b[key].speed.median > a[key].speed.median ? b : a));
      const ratio = ours[key].speed.median / bestPeer[key].speed.median;
      targets.push([
        `${framework} adapter ≥ best ${framework} peer, ${key === 'c1' ? 'c=1' : c8} (best: ${bestPeer.id})`,
        `${formatInt(ours[key].speed.median)} vs ${formatInt(bestPeer[key].speed.median)} MB/s, ${formatRatio(ratio)}; ` +
          `CPU ${ours[key].cpu.median.toFixed(2)} vs ${bestPeer[key].cpu.median.toFixed(2)} s / GiB`,
        ratio >= 1 || (ratio >= 0.9 ? 'no (within noise)' : false),
      ]);
    }
  }
  // Flat: the adapter's peak RSS growth stays within 8 MiB of the largest peer's, whatever the
  // size of the upload (256 MiB or 1 GiB) or the number at once: it does not grow with the bytes.
  for (const ours of results.filter((r) => r.ours)) {
    const peers = results.filter((r) => r.framework === ours.framework && !r.ours);
    for (const [key, label] of [
      ['c1', `${formatSize(params.bytes)}, c=1`],
      ['large', `${formatSize(params.largeBytes)}, c=1`],
      ['c8', `${formatSize(params.bytes)} × ${params.concurrency}`],
    ]) {
      const peerKey = key === 'large' ? 'c1' : key;
      const peerGrowth = peers.filter((r) => r[peerKey]).map((r) => r[peerKey].growth.median);
      if (!ours[key] || peerGrowth.length === 0) continue;
      const worst = Math.max(...peerGrowth);
      const g = ours[key].growth.median;
      targets.push([
        `${ours.framework} adapter: peak RSS growth flat, ${label} (≤ the largest peer's${key === 'large' ? ` at ${formatSize(params.bytes)}` : ''} + 8 MiB)`,
        `${formatMiB(g)} vs ${formatMiB(worst)}`,
        g <= worst + 8 * MiB,
      ]);
    }
  }
  for (const c of aborted.filter((x) => x.ours)) {
    const a = aborts[c.id];
    const firstLeft = a.checks[0].count;
    const held = a.checks.at(-1).held ?? [];
    targets.push([
      `no partial file after a client abort: ${c.id}`,
      a.checks.map((k) => `${k.count} files at ${k.at / 1000} s`).join(', ') + (held.length ? `; ${heldText(held)}` : ''),
      (firstLeft === 0 && held.length === 0) || (a.checks.at(-1).count === 0 && held.length === 0 ? `no (gone by ${params.abortChecks.at(-1) / 1000} s)` : false),
    ]);
  }
  out.push(targetsTable(targets), '');
  return `${out.join('\n')}\n`;
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
