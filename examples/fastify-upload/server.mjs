// Fastify + request.saveUploads() (on top of @fastify/multipart): a multipart upload streamed to a
// temp file in constant memory, handed off to a background worker, and every failure answered with
// its status with nothing left on disk.
// Run it with `npm run example:fastify-upload`, then open the URL it prints.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { TempFileManager } from 'tempfile-manager';
import tempFiles from 'tempfile-manager/fastify';
import { runIfMain } from '../shared/standalone.mjs';
import { TICKET_TTL_MS } from '../shared/upload-status.mjs';
import { createWorker } from '../shared/upload-worker.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

export async function start({ port = 0, root, maxBytes = 1024 * MiB, maxLiveBytes, minFreeBytes, jobDelayMs = 0, log = () => {} } = {}) {
  // maxLiveBytes: all uploads in flight together; minFreeBytes: refuse to fill the disk.
  const manager = new TempFileManager({ root, maxLiveBytes, minFreeBytes });
  const worker = createWorker(manager, { delayMs: jobDelayMs, log });
  const page = fs.readFileSync(path.join(here, '../shared/upload-page.html'));
  const app = Fastify({ logger: false });
  await app.register(tempFiles, { manager }); // registers @fastify/multipart as well
  app.setErrorHandler(fail(log));

  app.get('/', (_request, reply) => reply.type('text/html').send(page));

  // One file in the field `file`, the other limits small: a form of thousands of parts is a 413.
  const receive = { field: 'file', maxBytes, hash: 'sha256', maxFields: 10, maxParts: 20, onProgress: progressLog(log) };
  app.post('/upload', async (request, reply) => {
    const { file } = await request.saveUploads(receive);
    // Out of the request's scope: the file now outlives the request, until a worker consumes it.
    // The ticket keeps the client's file name, made safe, in meta.filename; the file has its type's extension.
    const ticket = await file.handoff({ ttlMs: TICKET_TTL_MS });
    worker.enqueue(ticket);
    log(`upload ${ticket.id}: ${ticket.size} bytes handed off`);
    return reply.code(202).send({ job: ticket.id, ticket });
  });

  app.get('/jobs/:id', async (request, reply) => worker.job(request.params.id) ?? reply.code(404).send({ error: 'no such job' }));

  // For the tests and the demo: this process's peak memory and the manager's counters.
  app.get('/stats', async () => ({ pid: process.pid, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...manager.stats() }));

  await app.listen({ port, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${app.server.address().port}`;

  async function close() {
    await app.close();
    await worker.idle();
    await manager.close();
  }
  return { url, close, manager };
}

/** Logs every 64 MiB received (of whichever upload is running: it is a log). */
function progressLog(log) {
  let last = 0;
  return ({ originalName, bytesWritten }) => {
    if (bytesWritten < last) last = 0; // another file
    if (bytesWritten - last < 64 * MiB) return;
    last = bytesWritten;
    log(`receiving ${originalName}: ${Math.round(bytesWritten / MiB)} MiB`);
  };
}

/** Every error of saveUploads() carries its status; the answer is JSON with the stable code. */
function fail(log) {
  return (err, request, reply) => {
    const status = err.statusCode ?? 500;
    log(`upload failed: ${status} ${err.code ?? ''} ${err.message}`);
    if (request.raw.socket.destroyed) return reply.hijack(); // the client went away: nobody to answer
    if (err.code === 'ERR_TEMPFILE_QUOTA_EXCEEDED') reply.header('retry-after', '10'); // the quota frees up as other uploads finish
    return reply.code(status).send({ error: err.code ?? 'ERR_UPLOAD', message: status < 500 ? err.message : 'internal error' });
  };
}

await runIfMain(import.meta.url, 'fastify-upload', start);
