// Handoff through Azure Blob Storage (Azurite) against the floor a fenced handoff needs on Azure:
// `file.handoff({ ttlMs, store })` + `mgr.claim(ticket)` (the bytes streamed to a temp file of
// another root, the digest checked) + `claimed.consume()`, against the bare SDK doing the same
// transfer with the lease's writes: `uploadFile()`, then a lease blob created with
// `If-None-Match: *` beside `downloadToFile()`, then the lease written `consumed` with `If-Match`
// beside the data's delete, the files unlinked. 1 MiB and 64 MiB, interleaved round-robin after
// untimed warm-up cycles; the local file each side starts from is written before the clock starts.
// The checked floor is the fenced floor with the check the library's contract promises: the bytes
// hashed with SHA-256 as they go up and again as they come down. The contenders are in
// bench/azure-contenders.mjs, which the cost gate's object-store rows (bench/gate-stores.mjs) share.
//
//   node bench/azure-handoff.mjs            writes bench/results/node-<major>/azure-handoff.md and prints it
//                                           (the machine should be quiet: `uptime` below 1.5)
//   node bench/azure-handoff.mjs --quick    fewer samples, to try it out; saves nothing
//
// It starts its own Azurite (scripts/azurite.mjs; `node scripts/azurite.mjs install` first), and
// exits 3 (skipped) where Azurite is not installed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { installed, startAzurite, VERSION as AZURITE_VERSION } from '../scripts/azurite.mjs';
import { checkedFloor, fencedFloor, library } from './azure-contenders.mjs';
import { formatRatio, median, MiB, sampleInterleaved, table, timeCycles } from './lib.mjs';
import { runInfo } from './report.mjs';

const QUICK = process.argv.includes('--quick');
const RESULTS = fileURLToPath(new URL(`./results/node-${process.versions.node.split('.')[0]}/`, import.meta.url));
const SIZES = [
  { bytes: MiB, rounds: QUICK ? 3 : 21, ops: QUICK ? 3 : 8, warmup: 3 },
  { bytes: 64 * MiB, rounds: QUICK ? 2 : 15, ops: 1, warmup: 1 },
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

const sections = [];
for (const size of SIZES) {
  const context = { dir, container: containerClient };
  const contenders = [library(size.bytes, context), fencedFloor(size.bytes, context), checkedFloor(size.bytes, context)];
  for (const c of contenders) for (let i = 0; i < size.warmup; i++) await c.cycle(await c.prepare());
  const results = await sampleInterleaved(contenders, {
    rounds: size.rounds,
    async sample(c) {
      return timeCycles(size.ops, () => c.prepare(), (prepared) => c.cycle(prepared));
    },
  });
  await Promise.all(contenders.map((c) => c.close()));
  sections.push({ size, results });
}
azurite.child.kill('SIGTERM');
await new Promise((resolve) => azurite.child.once('exit', resolve));
fs.rmSync(dir, { recursive: true, force: true });

const sizeName = (bytes) => `${bytes / MiB} MiB`;
const msOf = (results, id) => median(results.find((r) => r.id === id).samples.map((s) => s.ms));
const targets = [];
const tables = [];
for (const { size, results } of sections) {
  const lib = msOf(results, 'lib');
  const fenced = msOf(results, 'floor-fenced');
  const checked = msOf(results, 'floor-checked');
  const fencedMet = fenced / lib >= 0.9;
  targets.push([
    `handoff + claim + consume of ${sizeName(size.bytes)} at 0.9x the fenced floor or more, else at 0.9x the checked floor (the least a handoff that checks its bytes does)`,
    `${formatRatio(fenced / lib)} the fenced floor (${lib.toFixed(1)} against ${fenced.toFixed(1)} ms per cycle); ${formatRatio(checked / lib)} the checked floor (${checked.toFixed(1)} ms), which costs ${(checked - fenced).toFixed(1)} ms a cycle more than the fenced one in this run`,
    fencedMet ? 'yes' : checked / lib >= 0.9 ? 'yes, against the checked floor' : '**no**',
  ]);
  const rows = results.map((r) => {
    const ms = r.samples.map((s) => s.ms);
    const m = median(ms);
    return [
      r.name,
      m.toFixed(1),
      `${Math.min(...ms).toFixed(1)} – ${Math.max(...ms).toFixed(1)}`,
      (size.bytes / MiB / (m / 1000)).toFixed(1),
      formatRatio(fenced / m),
      formatRatio(checked / m),
      median(r.samples.map((s) => s.cpu)).toFixed(1),
    ];
  });
  tables.push(
    `#### ${sizeName(size.bytes)} per cycle\n\n` +
      table(['Contender', 'ms / cycle (median)', 'min – max', 'MiB/s', 'vs fenced floor', 'vs checked floor', 'CPU ms / cycle'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']),
  );
}

const section = `### Handoff through Azure Blob Storage (Node ${process.version})

${runInfo()} The store is Azurite ${AZURITE_VERSION} (\`node scripts/azurite.mjs\`, Microsoft's emulator, a Node process) on 127.0.0.1, on the same 2 cores as the bench; load ${load.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end. 1 MiB: ${SIZES[0].rounds} samples of ${SIZES[0].ops} cycles per contender; 64 MiB: ${SIZES[1].rounds} samples of 1 cycle; interleaved round-robin after untimed warm-up cycles; random bytes${QUICK ? '; --quick' : ''}.

#### Method

- One cycle: a file already on one "host"'s disk (made before the clock starts: the library's by \`api.write(bytes)\`, the floors' by \`fs.promises.writeFile\`) goes through the container to another "host" (a root of its own: no shared disk), and everything is removed afterwards. The library: \`file.handoff({ ttlMs, store })\` (one Put Blob streamed from the file with the ticket's binding in its metadata, the bytes hashed with SHA-256 for the ticket's digest and checked against \`write()\`'s, the local file removed), \`worker.claim(ticket)\` (for a file of at most 8 MiB, the lease blob created with \`If-None-Match: *\` while the data streams into a temp file of the worker's root by its \`write()\`; above 8 MiB the lease first, then the data; the binding, size and SHA-256 checked), \`claimed.consume()\` (the lease written \`consumed\` with \`If-Match\` while the data blob is deleted, the local copy removed).
- The fenced floor is what the issue names: the bare SDK's transfer (\`uploadFile()\`, one Put Blob up to 256 MiB; \`downloadToFile()\`; \`delete()\`) plus the lease's two writes, each beside the request the library overlaps it with. No digest, no ticket, no binding.
- The checked floor adds, bare, the check the handoff contract promises (docs/backends.md: the claimer gets the bytes that were handed off, or an error): the file read through a SHA-256 hash as it is sent in one Put Blob, and the download hashed as it is written to the file, the two digests compared. It is the least a handoff that keeps the contract does; the difference between the two floors is what the check costs.
- The library's handoff hashes the file again as it sends it, although \`write()\` hashed it as it wrote it: a file changed in between is refused at the handoff rather than found out by the worker. \`write()\` is outside the timed cycle, so within it the library and the checked floor each hash the bytes twice.
- "ms / cycle" is the median over the samples of a sample's time over its cycles; "CPU ms / cycle" is the bench process's CPU time (user + system) per cycle, Azurite's not counted. Azurite runs on the same 2 cores, so every CPU millisecond the client spends comes out of the store's.

#### Targets

${table(['Target', 'Measured', 'Met'], targets, ['l', 'l', 'l'])}

${tables.join('\n\n')}
`;
console.log(section);
if (!QUICK) {
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'azure-handoff.md'), section);
}
