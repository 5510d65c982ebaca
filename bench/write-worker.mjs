// Child of write.mjs: one sample of one contender, in a process of its own so that its peak RSS
// is its own. argv: a JSON spec { id, bytes, chunk, concurrency, root }. Prints
// { seconds, cpu, bytes, growth }: the time of the writes, the CPU time (user + system, every
// thread) they took, the bytes written, and the peak RSS (`process.resourceUsage().maxRSS`)
// minus the RSS before them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TempFileManager } from '../dist/index.js';
import { primePageCache } from './lib.mjs';

const { id, bytes, chunk, concurrency, root } = JSON.parse(process.argv[2]);
const mgr = new TempFileManager({ root, sweepOnStart: false, exitHook: false });
let n = 0;
const rawPath = () => path.join(root, `raw-${n++}`);

/** Every contender's source: `total` bytes in chunks of `chunk`, each a fresh `Buffer.allocUnsafe`. */
async function* source(total) {
  for (let left = total; left > 0; left -= chunk) yield Buffer.allocUnsafe(Math.min(chunk, left));
}

/** Each contender writes `total` bytes and resolves { size, remove }. */
const CONTENDERS = {
  mgr: async (total) => {
    const file = await mgr.write(source(total));
    return { size: file.size, remove: () => file.remove() };
  },
  'mgr-sha256': async (total) => {
    const file = await mgr.write(source(total), { hash: 'sha256' });
    if (!/[0-9a-f]{64}$/.test(file.digest)) throw new Error(`no digest: ${file.digest}`);
    return { size: file.size, remove: () => file.remove() };
  },
  pipeline: async (total) => {
    const p = rawPath();
    await pipeline(source(total), fs.createWriteStream(p, { flags: 'wx', mode: 0o600 }));
    return { size: fs.statSync(p).size, remove: () => fs.promises.unlink(p) };
  },
  handle: async (total) => {
    const p = rawPath();
    const handle = await fs.promises.open(p, 'wx', 0o600);
    try {
      for await (const c of source(total)) {
        if ((await handle.write(c)).bytesWritten !== c.length) throw new Error('short write');
      }
    } finally {
      await handle.close();
    }
    return { size: fs.statSync(p).size, remove: () => fs.promises.unlink(p) };
  },
  sha256: async (total) => {
    const hash = createHash('sha256');
    for await (const c of source(total)) hash.update(c);
    hash.digest();
    return { size: total, remove: async () => {} };
  },
};


const op = CONTENDERS[id];
if (!op) throw new Error(`unknown contender ${id}`);
await (await op(4 * chunk)).remove(); // warm-up: loads and compiles the contender's code
primePageCache(rawPath(), bytes * concurrency);
globalThis.gc();
const before = process.memoryUsage.rss();
const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const files = await Promise.all(Array.from({ length: concurrency }, () => op(bytes)));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const { user, system } = process.cpuUsage(cpuStart);
const growth = process.resourceUsage().maxRSS * 1024 - before;
for (const file of files) {
  if (file.size !== bytes) throw new Error(`${id} wrote ${file.size} bytes, not ${bytes}`);
  await file.remove();
}
await mgr.close();
console.log(JSON.stringify({ seconds, cpu: (user + system) / 1e6, bytes: bytes * concurrency, growth }));
