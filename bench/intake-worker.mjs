// One sample of bench/intake.mjs, in a process of its own: loads the build at <dist>, runs
// <warm> untimed operations of <op>, then <ops> timed ones (each writes a new file through the
// intake and removes it), and prints {"speed","cpuMicros"}: operations (or MB) per second and the
// process's CPU time per operation, every thread of it counted.
//
//   node bench/intake-worker.mjs <dist> <op id> <root>
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const KiB = 1024;
const MiB = 1024 * KiB;
const [dist, opId, root] = process.argv.slice(2);

/** A stream of `total` bytes in chunks of `chunk` bytes, one buffer yielded again and again. */
function chunked(total, chunk) {
  const bytes = Buffer.alloc(chunk, 0x61);
  return Readable.from((function* () {
    for (let sent = 0; sent < total; sent += chunk) yield bytes;
  })(), { objectMode: false });
}

/** The operations, by id: what bench/intake.mjs names and measures. */
const OPERATIONS = {
  'write-1k-buffer': { warm: 400, ops: 2000, bytes: KiB, source: () => Buffer.alloc(KiB, 0x61) },
  'write-1k-chunks': { warm: 1, ops: 3, bytes: 16 * MiB, unit: 'MB/s', source: () => chunked(16 * MiB, KiB) },
  'write-1m-chunks': { warm: 1, ops: 4, bytes: 64 * MiB, unit: 'MB/s', source: () => chunked(64 * MiB, MiB) },
};

if (dist) {
  const { TempFileManager } = await import(pathToFileURL(path.join(dist, 'index.js')).href);
  const op = OPERATIONS[opId];
  const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
  const once = async () => {
    const file = await mgr.write(op.source());
    if (file.size !== op.bytes) throw new Error(`write() made ${file.size} bytes of ${op.bytes}`);
    await file.remove();
  };
  for (let i = 0; i < op.warm; i++) await once();
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < op.ops; i++) await once();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  await mgr.close();
  const speed = op.unit ? (op.ops * op.bytes) / 1e6 / seconds : op.ops / seconds;
  process.stdout.write(`${JSON.stringify({ speed, cpuMicros: (cpu.user + cpu.system) / op.ops })}\n`);
}
