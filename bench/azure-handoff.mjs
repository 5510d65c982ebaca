// Handoff through Azure Blob Storage (Azurite) against the floor a fenced handoff needs on Azure:
// `file.handoff({ ttlMs, store })` + `mgr.claim(ticket)` (the bytes streamed to a temp file of
// another root, the digest checked) + `claimed.consume()`, against the bare SDK doing the same
// transfer with the lease's writes: `uploadFile()`, then a lease blob created with
// `If-None-Match: *` beside `downloadToFile()`, then the lease written `consumed` with `If-Match`
// beside the data's delete, the files unlinked. 1 MiB and 64 MiB, interleaved round-robin after
// untimed warm-up cycles; the local file each side starts from is written before the clock starts.
//
//   node bench/azure-handoff.mjs            prints the table (the machine should be quiet: `uptime` below 1.5)
//   node bench/azure-handoff.mjs --quick    fewer samples, to try it out
//
// It starts its own Azurite (scripts/azurite.mjs; `node scripts/azurite.mjs install` first).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { TempFileManager } from '../dist/index.js';
import { azureStore } from '../dist/azure.js';
import { installed, startAzurite } from '../scripts/azurite.mjs';
import { formatRatio, median, MiB, sampleInterleaved, table } from './lib.mjs';

const QUICK = process.argv.includes('--quick');
const SIZES = [
  { bytes: MiB, rounds: QUICK ? 3 : 15, ops: QUICK ? 3 : 8, warmup: 3 },
  { bytes: 64 * MiB, rounds: QUICK ? 2 : 9, ops: 1, warmup: 1 },
];

if (!installed()) {
  console.error('azure-handoff bench: Azurite is not installed: node scripts/azurite.mjs install');
  process.exit(3);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-bench-azure-'));
const azurite = await startAzurite({ location: path.join(dir, 'azurite') });
const load = os.loadavg()[0];

function containerClient() {
  const service = new BlobServiceClient(azurite.endpoint, new StorageSharedKeyCredential(azurite.account, azurite.key));
  return service.getContainerClient('tfm-bench');
}
await containerClient().createIfNotExists();

/** The library: a TempFile handed off, claimed on another root, consumed. */
function library(bytes) {
  const prefix = `lib-${randomBytes(4).toString('hex')}/`;
  const store = azureStore({ client: containerClient(), prefix });
  const options = { sweepOnStart: false, sweepIntervalMs: 0, exitHook: false, stores: [store] };
  const api = new TempFileManager({ root: path.join(dir, 'lib-api'), ...options });
  const worker = new TempFileManager({ root: path.join(dir, 'lib-worker'), ...options });
  const data = randomBytes(bytes);
  return {
    id: 'lib',
    name: 'library: handoff + claim + consume',
    prepare: () => api.write(data, { suffix: '.bin' }),
    async cycle(file) {
      const ticket = await file.handoff({ ttlMs: 3_600_000, store });
      const claimed = await worker.claim(ticket);
      await claimed.consume();
    },
    close: () => Promise.all([api.close(), worker.close()]),
  };
}

/** The fenced floor: the bare SDK's transfer, with the lease's create and its consumed write. */
function fencedFloor(bytes) {
  const client = containerClient();
  const prefix = `floor-${randomBytes(4).toString('hex')}/`;
  const local = path.join(dir, 'floor-api');
  const remote = path.join(dir, 'floor-worker');
  fs.mkdirSync(local, { recursive: true });
  fs.mkdirSync(remote, { recursive: true });
  const data = randomBytes(bytes);
  let n = 0;
  return {
    id: 'floor-fenced',
    name: 'fenced floor: uploadFile, lease created beside downloadToFile, consumed beside the delete',
    async prepare() {
      const file = path.join(local, `${++n}.bin`);
      await fs.promises.writeFile(file, data);
      return file;
    },
    async cycle(file) {
      const name = `${prefix}${path.basename(file)}`;
      const blob = client.getBlockBlobClient(`${name}/data`);
      const lease = client.getBlockBlobClient(`${name}/lease`);
      await blob.uploadFile(file);
      await fs.promises.unlink(file);
      const copy = path.join(remote, path.basename(file));
      const [created] = await Promise.all([lease.upload('held', 4, { conditions: { ifNoneMatch: '*' } }), blob.downloadToFile(copy)]);
      await Promise.all([lease.upload('consumed', 8, { conditions: { ifMatch: created.etag } }), blob.delete()]);
      await fs.promises.unlink(copy);
    },
    close: async () => {},
  };
}

const rows = [];
const ratios = [];
for (const size of SIZES) {
  const contenders = [library(size.bytes), fencedFloor(size.bytes)];
  for (const c of contenders) for (let i = 0; i < size.warmup; i++) await c.cycle(await c.prepare());
  const results = await sampleInterleaved(contenders, {
    rounds: size.rounds,
    async sample(c) {
      let ms = 0;
      for (let i = 0; i < size.ops; i++) {
        const prepared = await c.prepare();
        const started = performance.now();
        await c.cycle(prepared);
        ms += performance.now() - started;
      }
      return ms / size.ops;
    },
  });
  const msOf = (id) => median(results.find((r) => r.id === id).samples);
  const lib = msOf('lib');
  const floor = msOf('floor-fenced');
  ratios.push({ bytes: size.bytes, ratio: floor / lib });
  for (const r of results) {
    const ms = median(r.samples);
    rows.push([`${size.bytes / MiB} MiB`, r.name, ms.toFixed(1), ((size.bytes / MiB) / (ms / 1000)).toFixed(1), String(r.samples.length)]);
  }
  await Promise.all(contenders.map((c) => c.close()));
}

console.log(`Azure handoff on Azurite ${azurite.endpoint} (Node ${process.version}, load ${load.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end${QUICK ? ', --quick' : ''})\n`);
console.log(table(['size', 'contender', 'ms / cycle (median)', 'MiB/s', 'samples'], rows));
for (const { bytes, ratio } of ratios) console.log(`\n${bytes / MiB} MiB: the library at ${formatRatio(ratio)} the fenced floor (target 0.9x)`);
azurite.child.kill('SIGTERM');
await new Promise((resolve) => azurite.child.once('exit', resolve));
fs.rmSync(dir, { recursive: true, force: true });
