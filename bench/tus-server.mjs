// One tus server of the tus benchmark (bench/tus.mjs), in a process of its own: @tus/server with
// `tempfile-manager/tus`'s store and locker, with @tus/file-store (and @tus/server's own in-memory
// locker), or with @tus/file-store made as durable as tempfile-manager/tus (each PATCH's file
// fsynced before it is answered), storing under the directory given. Prints `{ "port": N }` once
// it listens.
//
// With a third argument, N, the process first holds N MiB of live objects of its own, as a
// service's framework, routes and caches do (see bench/tus.mjs for why it matters).
//
// `file-store-fsync-thread` is the durable one plus a worker thread started at the first request
// and left idle, beating once a second: what any process that keeps a heartbeat through a blocked
// event loop runs (tempfile-manager's beat thread, docs/crash-recovery.md).
//
//   node bench/tus-server.mjs <tempfile-manager|file-store|file-store-fsync|file-store-fsync-thread> <dir> [heap MiB]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Server } from '@tus/server';

const [contender, dir, heapMiB = '0'] = process.argv.slice(2);
// About 1 KiB per object, live for the process's life.
globalThis.serviceHeap = Array.from({ length: Number(heapMiB) * 1024 }, (_, i) => ({ i, text: `${'x'.repeat(1000)}${i}` }));

/**
 * @tus/file-store with tempfile-manager/tus's durability: the offset a PATCH answers is on disk.
 * Its file is fsynced after the PATCH's last byte and before the answer, as tempfile-manager/tus
 * does; nothing else changes.
 */
async function durableFileStore(FileStore) {
  return class DurableFileStore extends FileStore {
    async write(readable, id, offset) {
      const written = await super.write(readable, id, offset);
      const handle = await fs.promises.open(this.resolve(id), 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      return written;
    }
  };
}

async function store() {
  if (contender === 'file-store' || contender.startsWith('file-store-fsync')) {
    const { FileStore } = await import('@tus/file-store');
    const Store = contender === 'file-store' ? FileStore : await durableFileStore(FileStore);
    return { datastore: new Store({ directory: path.join(dir, 'files') }) };
  }
  const { TempFileManager } = await import('../dist/index.js');
  const { tusStore } = await import('../dist/tus.js');
  // Each finished upload is kept beside the root, as @tus/file-store leaves its file where it is.
  const manager = new TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, sweepIntervalMs: 0 });
  const kept = path.join(dir, 'kept');
  fs.mkdirSync(kept);
  return tusStore({ manager, onUploadFinish: (file, upload) => file.keep(path.join(kept, upload.id)) });
}

const tus = new Server({ path: '/files', ...(await store()) });
let thread;
const startThread = () => {
  thread = new Worker("require('node:worker_threads'); setInterval(() => {}, 1000);", { eval: true, stdout: false, stderr: false });
  thread.unref();
};
const server = http.createServer((req, res) => {
  if (contender === 'file-store-fsync-thread' && thread === undefined) startThread();
  void tus.handle(req, res);
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
