// Browser straight to the bucket (presigned uploads), against the Ceph RGW the S3 tests use.
//
// 1. What one upload costs the API: the CPU it spends from its first request to its last answer,
//    and its peak RSS, for a file of 64 MiB and of 1 GiB, through three ways in: `presign` (the
//    API presigns, the "browser", this process, POSTs the form straight to the bucket, the API
//    confirms: the object read once), `lib` (upload({ store }): the bytes through the API) and
//    `multer` (multer-s3). Beside them the read floor: the CPU of a process that reads the object
//    once and hashes it (a HEAD, a GetObject, SHA-256), what the confirmation cannot do without.
//    Each sample is one upload to a fresh server process; samples interleaved; medians.
// 2. The time from the last byte to a ticket: `confirmUpload()` against the floor the issue names
//    (a HEAD and a read of the object at the gateway's speed) and against the fenced floor (the
//    same SDK calls a confirmation that keeps its promises must make, bare: the record read beside
//    the HEAD, then the record's conditional write, the CopyObject and the read at once, then the
//    two deletes). 1 MiB and 64 MiB, interleaved, medians.
//
//   node bench/browser-to-bucket.mjs            writes bench/results/node-<major>/browser-to-bucket.md and prints it
//   node bench/browser-to-bucket.mjs --quick    one round, to try it out (printed, not written)
//
// It needs the gateway (`node scripts/rgw.mjs start`); without one it says so and exits 3.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { s3Store } from '../dist/s3.js';
import { benchClient, BUCKET, ensureBucket, gateway, reclaimDeleted } from './s3-contenders.mjs';
import { formatRatio, GiB, median, MiB, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';

const SERVER = fileURLToPath(new URL('./browser-to-bucket-server.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const QUICK = process.argv.includes('--quick');
const COST_SIZES = [
  { bytes: 64 * MiB, rounds: QUICK ? 1 : 3 },
  { bytes: GiB, rounds: QUICK ? 1 : 2 },
];
const LATENCY_SIZES = [
  { bytes: MiB, rounds: QUICK ? 2 : 15 },
  { bytes: 64 * MiB, rounds: QUICK ? 1 : 7 },
];
const COST_IDS = ['presign', 'lib', 'multer', 'read'];
const COST_NAMES = {
  presign: '`store.presignUpload()`, the form POSTed straight to the bucket, `store.confirmUpload()` (the API\'s two requests)',
  lib: '`upload({ field, store, ttlMs })`: the bytes through the API to the bucket',
  multer: '`multer({ storage: multerS3(...) }).single(field)`: the bytes through the API to the bucket',
  read: 'read floor: a HEAD, a GetObject streamed through SHA-256 (what a confirmation must read)',
};
const LATENCY_IDS = ['confirm', 'floor', 'fenced'];
const LATENCY_NAMES = {
  confirm: '`store.confirmUpload({ key }, { ttlMs })`',
  floor: "the issue's floor: a HeadObject, then a GetObject read at the gateway's speed",
  fenced: "fenced floor: the record's GetObject beside the HeadObject; then its conditional PutObject (If-Match), the CopyObject and the GetObject read at once; then the two DeleteObjects, all bare SDK calls",
};
const FLAT_MIB = 8;
const block = randomBytes(MiB);
const runId = randomBytes(4).toString('hex');

/** Starts one server process; resolves with its port and a promise of its peak RSS and CPU. */
async function startServer(id, prefix) {
  const child = spawn(process.execPath, [SERVER, id, prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`${id} server did not start: ${stderr}`);
  const { port } = JSON.parse(first.value);
  const usage = lines.next().then(({ value, done }) => {
    if (done) throw new Error(`${id} server ended without its usage: ${stderr}`);
    const { maxRssKiB, cpuMs } = JSON.parse(value);
    return { rss: maxRssKiB * 1024, cpuMs };
  });
  return { port, usage };
}

/** Sends a multipart form: `fields` first, then one file of `bytes` (1 MiB blocks); resolves with the answer's body. */
function postForm(url, fields, bytes) {
  const boundary = `tfmBench${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.bin"\r\nContent-Type: ${fields['Content-Type'] ?? 'application/octet-stream'}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + bytes + tail.length } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode < 300 ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    let left = bytes;
    const more = () => {
      while (left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        if (!req.write(chunk)) return req.once('drain', more);
      }
      req.end(tail);
    };
    if (!req.write(head)) req.once('drain', more);
    else more();
  });
}

async function postJson(port, path, body) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}: ${await response.text()}`);
  return response.json();
}

async function emptyPrefix(client, prefix) {
  for (;;) {
    const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (keys.length === 0) return;
    await client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
}

/** The CPU (ms) of reading an object once through SHA-256, in a process of its own. */
function readFloorCpu(key) {
  const code = `
    import { createHash } from 'node:crypto';
    import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
    import { benchClient, BUCKET, gateway } from './bench/s3-contenders.mjs';
    const found = await gateway();
    const { client } = benchClient(found.state);
    const start = process.cpuUsage();
    await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: ${JSON.stringify(key)} }));
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: ${JSON.stringify(key)} }));
    const hash = createHash('sha256');
    for await (const chunk of out.Body) hash.update(chunk);
    hash.digest();
    const cpu = process.cpuUsage(start);
    console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 }));
    process.exit(0);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the read floor failed: ${err}`));
      const { maxRssKiB, cpuMs } = JSON.parse(out.trim().split('\n').at(-1));
      resolve({ rss: maxRssKiB * 1024, cpuMs });
    });
  });
}

/** One upload through contender `id`; resolves with the API's { rss, cpuMs }. */
async function costSample(id, client, bytes) {
  const prefix = `bench-b2b-${runId}/${id}/`;
  if (id === 'read') {
    const key = `${prefix}object`;
    const { Upload } = await import('@aws-sdk/lib-storage');
    const { Readable } = await import('node:stream');
    await new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: Readable.from((function* () { for (let left = bytes; left > 0; left -= MiB) yield block; })()) } }).done();
    const usage = await readFloorCpu(key);
    await emptyPrefix(client, prefix);
    return usage;
  }
  const server = await startServer(id, prefix);
  if (id === 'presign') {
    const presigned = await postJson(server.port, '/presign', { maxBytes: bytes });
    await postForm(presigned.url, presigned.fields, bytes);
    await postJson(server.port, '/confirm', { key: presigned.key });
  } else {
    await postForm(`http://127.0.0.1:${server.port}/upload`, {}, bytes);
  }
  const usage = await server.usage;
  await emptyPrefix(client, prefix);
  return usage;
}

/** A presigned upload of `bytes` made and sent, untimed: its key. */
async function uploaded(store, bytes) {
  const presigned = await store.presignUpload({ maxBytes: bytes });
  await postForm(presigned.url, presigned.fields, bytes);
  return presigned.key;
}

/** The bare SDK calls a fenced confirmation makes, on an object uploaded with a presign. */
async function fencedFloor(client, key) {
  const record = key.replace(/upload$/, 'record');
  const [got] = await Promise.all([client.send(new GetObjectCommand({ Bucket: BUCKET, Key: record })), client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))]);
  const text = await got.Body.transformToString();
  const copy = `${key.replace(/\.intake\/.*$/, '')}${randomBytes(16).toString('hex')}.${Date.now() + 60_000}/data`;
  const read = async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of out.Body) hash.update(chunk);
    return hash.digest('hex');
  };
  await Promise.all([
    client.send(new PutObjectCommand({ Bucket: BUCKET, Key: record, Body: text, IfMatch: got.ETag.replace(/"/g, '') })),
    client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: copy, CopySource: `${BUCKET}/${key}`, MetadataDirective: 'REPLACE', Metadata: { 'tfm-ticket-sha256': 'x' } })),
    read(),
  ]);
  await Promise.all([client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })), client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: record }))]);
}

async function issueFloor(client, key) {
  await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  for await (const _chunk of out.Body);
}

async function latencySample(id, store, client, bytes) {
  const key = await uploaded(store, bytes);
  const started = performance.now();
  if (id === 'confirm') await store.confirmUpload({ key }, { ttlMs: 60_000 });
  else if (id === 'floor') await issueFloor(client, key);
  else await fencedFloor(client, key);
  return { ms: performance.now() - started };
}

async function main() {
  const found = await gateway();
  if (!('state' in found)) {
    console.error(`bench/browser-to-bucket.mjs needs the S3 gateway the tests use: ${found.reason}.`);
    process.exitCode = 3;
    return;
  }
  const { client } = benchClient(found.state);
  await ensureBucket(client);
  reclaimDeleted(found.state);
  const costs = [];
  for (const size of COST_SIZES) {
    const results = await sampleInterleaved(COST_IDS.map((id) => ({ id })), { rounds: size.rounds, sample: (c) => costSample(c.id, client, size.bytes) });
    costs.push({ size, results: results.map((r) => ({ id: r.id, cpuMs: median(r.samples.map((s) => s.cpuMs)), rss: median(r.samples.map((s) => s.rss)), n: r.samples.length })) });
    reclaimDeleted(found.state);
    console.error(`cost: done ${size.bytes / MiB} MiB`);
  }
  const latencyPrefix = `bench-b2b-${runId}/latency/`;
  const store = s3Store({ client, bucket: BUCKET, prefix: latencyPrefix });
  await latencySample('confirm', store, client, MiB); // warm-up: the store's first conditional write probes the gateway
  const latencies = [];
  for (const size of LATENCY_SIZES) {
    const results = await sampleInterleaved(LATENCY_IDS.map((id) => ({ id })), { rounds: size.rounds, sample: (c) => latencySample(c.id, store, client, size.bytes) });
    latencies.push({ size, results: results.map((r) => ({ id: r.id, ms: median(r.samples.map((s) => s.ms)), n: r.samples.length })) });
    await emptyPrefix(client, latencyPrefix);
    console.error(`latency: done ${size.bytes / MiB} MiB`);
  }
  reclaimDeleted(found.state);

  const costOf = (id, bytes) => costs.find((c) => c.size.bytes === bytes).results.find((r) => r.id === id);
  const costRows = costs.flatMap(({ size, results }) => results.map((r) => [`${size.bytes / MiB} MiB`, r.id, r.cpuMs.toFixed(0), `${(r.rss / MiB).toFixed(0)} MiB`, String(r.n)]));
  const latencyRows = latencies.flatMap(({ size, results }) => {
    const ms = (id) => results.find((r) => r.id === id).ms;
    return results.map((r) => [`${size.bytes / MiB} MiB`, r.id, r.ms.toFixed(1), r.id === 'confirm' ? formatRatio(ms('floor') / r.ms) : '', r.id === 'confirm' ? formatRatio(ms('fenced') / r.ms) : '', String(r.n)]);
  });
  const presignGrowth = costOf('presign', GiB).cpuMs - costOf('presign', 64 * MiB).cpuMs;
  const readGrowth = costOf('read', GiB).cpuMs - costOf('read', 64 * MiB).cpuMs;
  const rssGrowth = (costOf('presign', GiB).rss - costOf('presign', 64 * MiB).rss) / MiB;
  const readRssGrowth = (costOf('read', GiB).rss - costOf('read', 64 * MiB).rss) / MiB;
  const ratios = (against) => latencies.map(({ results }) => results.find((r) => r.id === against).ms / results.find((r) => r.id === 'confirm').ms);
  const worstFenced = Math.min(...ratios('fenced'));
  const worstIssue = Math.min(...ratios('floor'));
  const targets = targetsTable([
    [`the API's CPU grows with the size no more than the confirmation's read: presign's growth from 64 MiB to 1 GiB within 1.25x the read floor's`, `+${presignGrowth.toFixed(0)} ms against +${readGrowth.toFixed(0)} ms`, presignGrowth <= readGrowth * 1.25],
    [`the API's peak RSS flat: its growth from 64 MiB to 1 GiB within +${FLAT_MIB} MiB of the read floor's (the SDK's own read grows it)`, `${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MiB against ${readRssGrowth >= 0 ? '+' : ''}${readRssGrowth.toFixed(1)} MiB`, rssGrowth <= readRssGrowth + FLAT_MIB],
    ['last byte to ticket >= 0.90x the fenced floor, at each size', formatRatio(worstFenced), worstFenced >= 0.9],
    ["last byte to ticket against the issue's floor (a HEAD and a read), at each size (reported beside the fenced floor)", formatRatio(worstIssue), worstIssue >= 0.9],
  ]);
  const report = [
    `### Browser to bucket (Node ${process.version})`,
    '',
    `${runInfo()} Ceph RGW on the same machine; load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} at the end of the run.`,
    '',
    '#### Method',
    '',
    ...COST_IDS.map((id) => `- **${id}**: ${COST_NAMES[id]}`),
    ...LATENCY_IDS.map((id) => `- **${id}**: ${LATENCY_NAMES[id]}`),
    '',
    "Cost: each sample one upload to a fresh server process; CPU is the server's user + system time from its first request to its last answer, RSS its peak. Latency: each sample one object uploaded with a presign (untimed), then timed from the last byte's answer to the ticket (or to the floor's end). Medians of interleaved samples.",
    '',
    '#### What one upload costs the API',
    '',
    table(['size', 'contender', 'CPU ms', 'peak RSS', 'samples'], costRows, ['r', 'l', 'r', 'r', 'r']),
    '',
    '#### Last byte to ticket',
    '',
    table(['size', 'contender', 'ms', "issue's floor / it", 'fenced floor / it', 'samples'], latencyRows, ['r', 'l', 'r', 'r', 'r', 'r']),
    '',
    '#### Targets',
    '',
    targets,
    '',
  ].join('\n');
  console.log(report);
  if (!QUICK) {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(`${RESULTS}browser-to-bucket.md`, report);
  }
}

await main();
