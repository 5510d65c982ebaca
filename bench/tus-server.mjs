// One tus server of the tus benchmark (bench/tus.mjs), in a process of its own: @tus/server with
// `tempfile-manager/tus`'s store and locker, or with @tus/file-store (and @tus/server's own
// in-memory locker), storing under the directory given. Prints `{ "port": N }` once it listens.
//
//   node bench/tus-server.mjs <tempfile-manager|file-store> <dir>
import http from 'node:http';
import path from 'node:path';
import { Server } from '@tus/server';

const [contender, dir] = process.argv.slice(2);

async function store() {
  if (contender === 'file-store') {
    const { FileStore } = await import('@tus/file-store');
    return { datastore: new FileStore({ directory: path.join(dir, 'files') }) };
  }
  const { TempFileManager } = await import('../dist/index.js');
  const { tusStore } = await import('../dist/tus.js');
  // No onUploadFinish: each finished upload is moved into the session and removed at once.
  const manager = new TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, sweepIntervalMs: 0 });
  return tusStore({ manager });
}

const tus = new Server({ path: '/files', ...(await store()) });
const server = http.createServer((req, res) => void tus.handle(req, res));
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
