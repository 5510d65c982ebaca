// tus + tempfile-manager/tus: a browser uploads with tus-js-client, resumably. Each upload in
// progress is a private file under the manager's root, resumable by this server after a crash;
// the finished one is handed off to a worker, which checks its SHA-256 against the one the page
// declared. Run it with `npm run example:tus-resumable`, then open the URL it prints.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '@tus/server';
import { TempFileManager } from 'tempfile-manager';
import { tusStore } from 'tempfile-manager/tus';
import { runIfMain } from '../shared/standalone.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const TICKET_TTL_MS = 3_600_000;

// tus-js-client's browser bundle, served as it is installed.
const clientDir = (() => {
  const entry = createRequire(import.meta.url).resolve('tus-js-client');
  return entry.slice(0, entry.lastIndexOf(`${path.sep}tus-js-client${path.sep}`) + `${path.sep}tus-js-client`.length);
})();
const STATIC = {
  '/': { file: path.join(here, 'page.html'), type: 'text/html; charset=utf-8' },
  '/tus.min.js': { file: path.join(clientDir, 'dist/tus.min.js'), type: 'text/javascript; charset=utf-8' },
};

export async function start({ port = 0, root, maxBytes = 1024 * MiB, maxLiveBytes, minFreeBytes, log = () => {} } = {}) {
  const manager = new TempFileManager({ root, maxLiveBytes, minFreeBytes });
  const jobs = new Map();
  const { datastore, locker } = await tusStore({
    manager,
    maxBytes,
    expirationMs: 24 * 3_600_000, // an upload abandoned for a day goes with the manager's sweep
    onUploadFinish: async (file, upload) => {
      // The finished upload leaves <root>/tus for <root>/handoff: a worker anywhere sharing the root takes it.
      const ticket = await file.handoff({ ttlMs: TICKET_TTL_MS, meta: { uploadId: upload.id, sha256: upload.metadata?.sha256 ?? null } });
      log(`upload ${upload.id}: ${ticket.size} bytes handed off`);
      jobs.set(upload.id, { state: 'queued' });
      queue = queue.then(() => work(manager, ticket, jobs, log));
    },
  });
  let queue = Promise.resolve();
  const tus = new Server({ path: '/files', datastore, locker });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/files')) return void tus.handle(req, res);
    const job = /^\/jobs\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (job) return answerJson(res, jobs.has(job[1]) ? 200 : 404, jobs.get(job[1]) ?? { error: 'no such job' });
    const asset = STATIC[url.pathname];
    if (!asset || req.method !== 'GET') return answerJson(res, 404, { error: 'not found' });
    res.writeHead(200, { 'content-type': asset.type });
    fs.createReadStream(asset.file).pipe(res);
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  async function close() {
    server.close();
    server.closeAllConnections();
    await queue;
    await manager.close();
  }
  return { url, close, manager };
}

/** The worker: claims the ticket, hashes the file, compares with the digest the page declared, consumes it. */
async function work(manager, ticket, jobs, log) {
  const id = ticket.meta.uploadId;
  jobs.set(id, { state: 'running' });
  try {
    const result = await manager.withClaim(ticket, async (claimed) => {
      const hash = createHash('sha256');
      for await (const chunk of fs.createReadStream(claimed.path)) hash.update(chunk);
      const sha256 = hash.digest('hex');
      return { size: claimed.size, sha256, verified: sha256 === ticket.meta.sha256 };
    });
    jobs.set(id, { state: 'done', result });
    log(`job ${id}: ${result.size} bytes, sha256 ${result.verified ? 'as declared' : 'NOT as declared'}`);
  } catch (err) {
    jobs.set(id, { state: 'failed', error: err.code ?? String(err) });
    log(`job ${id}: failed, ${err.message}`);
  }
}

function answerJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

await runIfMain(import.meta.url, 'tus-resumable', start);
