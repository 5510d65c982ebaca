// An upload streamed straight to the bucket through an Express server, against the Ceph RGW the S3
// tests use: the library's `upload({ field, store, ttlMs })` (no local file) against multer-s3 and
// against the floor, lib-storage's `Upload` of the raw request stream with the store's part size
// and parallelism (8 MiB × 2). Each sample is one upload to a fresh server process (its peak RSS
// is that process's `maxRSS`); samples interleaved, contender order rotated per round; medians.
//
//   node bench/s3-direct.mjs            writes bench/results/node-<major>/s3-direct.md and prints it
//   node bench/s3-direct.mjs --quick    one round, to try it out (printed, not written)
//
// It needs the gateway (`node scripts/rgw.mjs start`); without one it says so and exits 3.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { benchClient, ensureBucket, gateway, reclaimDeleted, BUCKET } from './s3-contenders.mjs';
import { formatRatio, GiB, median, MiB, sampleInterleaved, table, targetsTable } from './lib.mjs';
import { runInfo } from './report.mjs';

const SERVER = fileURLToPath(new URL('./s3-direct-server.mjs', import.meta.url));
const NODE_MAJOR = process.versions.node.split('.')[0];
const RESULTS = fileURLToPath(new URL(`./results/node-${NODE_MAJOR}/`, import.meta.url));
const QUICK = process.argv.includes('--quick');
const SIZES = [
  { bytes: 64 * MiB, rounds: QUICK ? 1 : 5 },
  { bytes: 256 * MiB, rounds: QUICK ? 1 : 3 },
  { bytes: GiB, rounds: QUICK ? 1 : 2 },
];
const IDS = ['lib', 'multer', 'floor'];
const NAMES = {
  lib: '`upload({ field, store, ttlMs })`: the part straight to the store (8 MiB parts, 2 in flight), sniffed, hashed, ticket',
  multer: '`multer({ storage: multerS3(...) }).single(field)` (lib-storage `Upload`, its defaults: 5 MiB parts, 4 in flight)',
  floor: 'floor: lib-storage `Upload` of the raw request stream, 8 MiB parts, 2 in flight',
};
// "Flat": the 1 GiB peak at most this much above the 64 MiB peak of the same contender: memory
// that grew with the object would add hundreds of MiB for 16 times the bytes.
const FLAT_MIB = 16;
const BOUNDARY = 'tfmBenchBoundary0123456789';
const block = randomBytes(MiB);
const runId = randomBytes(4).toString('hex');

/** Starts one server process; resolves with its port, and a promise of its peak RSS. */
async function startServer(id, prefix) {
  const child = spawn(process.execPath, [SERVER, id, prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`${id} server did not start: ${stderr}`);
  const { port } = JSON.parse(first.value);
  const rss = lines.next().then(({ value, done }) => {
    if (done) throw new Error(`${id} server ended without its RSS: ${stderr}`);
    return JSON.parse(value).maxRssKiB * 1024;
  });
  return { port, rss };
}

/** Posts a form with one file of `bytes`; resolves with the seconds from the first byte sent to the answer's end. */
function post(port, bytes) {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="clip.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/upload',
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': head.length + bytes + tail.length },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - started) / 1e9) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
    });
    let left = bytes;
    const write = () => {
      if (!req.write(head)) return req.once('drain', more);
      more();
    };
    const more = () => {
      while (left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        if (!req.write(chunk)) return req.once('drain', more);
      }
      req.end(tail);
    };
    write();
  });
}

async function emptyPrefix(client, prefix) {
  for (;;) {
    const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (keys.length === 0) return;
    await client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
}

async function main() {
  const found = await gateway();
  if (!('state' in found)) {
    console.error(`bench/s3-direct.mjs needs the S3 gateway the tests use: ${found.reason}.`);
    process.exitCode = 3;
    return;
  }
  const { client } = benchClient(found.state);
  await ensureBucket(client);
  reclaimDeleted(found.state);
  const bySize = [];
  for (const size of SIZES) {
    const contenders = IDS.map((id) => ({ id, name: NAMES[id] }));
    const results = await sampleInterleaved(contenders, {
      rounds: size.rounds,
      sample: async (c) => {
        const prefix = `bench-direct-${runId}/${c.id}/`;
        const server = await startServer(c.id, prefix);
        const seconds = await post(server.port, size.bytes);
        const rss = await server.rss;
        await emptyPrefix(client, prefix);
        return { mibPerS: size.bytes / MiB / seconds, rss };
      },
    });
    if (size.bytes >= 256 * MiB) reclaimDeleted(found.state);
    bySize.push({ size, results: results.map((r) => ({ id: r.id, mibPerS: median(r.samples.map((s) => s.mibPerS)), rss: median(r.samples.map((s) => s.rss)), n: r.samples.length })) });
    console.error(`done: ${size.bytes / MiB} MiB`);
  }
  const rows = [];
  for (const { size, results } of bySize) {
    const floor = results.find((r) => r.id === 'floor');
    for (const r of results) {
      rows.push([`${size.bytes / MiB} MiB`, r.id, r.mibPerS.toFixed(1), formatRatio(r.mibPerS / floor.mibPerS), `${(r.rss / MiB).toFixed(0)} MiB`, String(r.n)]);
    }
  }
  const of = (id, bytes) => bySize.find((s) => s.size.bytes === bytes).results.find((r) => r.id === id);
  const worstRatio = Math.min(...bySize.map(({ results }) => results.find((r) => r.id === 'lib').mibPerS / results.find((r) => r.id === 'floor').mibPerS));
  const growth = (of('lib', GiB).rss - of('lib', 64 * MiB).rss) / MiB;
  const targets = targetsTable([
    ['upload straight to the store: MiB/s >= 0.90x the floor, at every size', formatRatio(worstRatio), worstRatio >= 0.9],
    [`library's server peak RSS flat: 1 GiB within +${FLAT_MIB} MiB of 64 MiB`, `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB`, growth <= FLAT_MIB],
  ]);
  const report = [
    `### Uploads straight to an object store (Node ${process.version})`,
    '',
    `${runInfo()} Ceph RGW on the same machine; load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} at the end of the run.`,
    '',
    '#### Method',
    '',
    ...IDS.map((id) => `- **${id}**: ${NAMES[id]}`),
    '',
    'Each sample: one multipart form with one file, sent by this process to a fresh Express server process; MiB/s from the first byte sent to the answer; RSS the server\'s peak. Medians of interleaved samples.',
    '',
    '#### MiB/s and peak RSS',
    '',
    table(['size', 'contender', 'MiB/s', 'vs floor', 'peak RSS', 'samples'], rows, ['r', 'l', 'r', 'r', 'r', 'r']),
    '',
    '#### Targets',
    '',
    targets,
    '',
  ].join('\n');
  console.log(report);
  if (!QUICK) {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(`${RESULTS}s3-direct.md`, report);
  }
}

await main();
