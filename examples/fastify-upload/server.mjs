// Fastify + @fastify/multipart: a multipart upload streamed to a temp file in constant memory,
// handed off to a background worker, and every failure mapped to a status with nothing left on disk.
// Run it with `npm run example:fastify-upload`, then open the URL it prints.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import multipart from '@fastify/multipart';
import Fastify from 'fastify';
import { TempFileManager } from 'tempfile-manager';
import tempFiles from 'tempfile-manager/fastify';
import { runIfMain } from '../shared/standalone.mjs';
import { STATUS, TICKET_TTL_MS } from '../shared/upload-status.mjs';
import { createWorker } from '../shared/upload-worker.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

export async function start({ port = 0, root, maxBytes = 1024 * MiB, maxLiveBytes, minFreeBytes, jobDelayMs = 0, log = () => {} } = {}) {
  // maxLiveBytes: all uploads in flight together; minFreeBytes: refuse to fill the disk.
  const manager = new TempFileManager({ root, maxLiveBytes, minFreeBytes });
  const worker = createWorker(manager, { delayMs: jobDelayMs, log });
  const page = fs.readFileSync(path.join(here, '../shared/upload-page.html'));
  const app = Fastify({ logger: false });
  await app.register(multipart);
  await app.register(tempFiles, { manager });

  app.get('/', (_request, reply) => reply.type('text/html').send(page));

  app.post('/upload', async (request, reply) => {
    try {
      const { file, filename } = await receiveFile(request, { maxBytes, log });
      // Out of the request's scope: the file now outlives the request, until a worker consumes it.
      const ticket = await file.handoff({ ttlMs: TICKET_TTL_MS, meta: { filename: filename.slice(0, 255) } });
      worker.enqueue(ticket);
      log(`upload ${ticket.id}: ${ticket.size} bytes handed off`);
      return reply.code(202).send({ job: ticket.id, ticket });
    } catch (err) {
      return fail(request, reply, err, log);
    }
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

/** Reads the form to its end and streams its one file, field `file`, into `request.tmp`. */
async function receiveFile(request, { maxBytes, log }) {
  let upload;
  // fileSize is one past maxBytes: the parser silently truncates at its limit, while write()
  // sees the extra byte and fails with SizeLimitError.
  const limits = { fileSize: maxBytes + 1, files: 1, fields: 10, parts: 20 };
  try {
    for await (const part of request.parts({ limits })) {
      if (part.type !== 'file') continue;
      if (part.fieldname !== 'file' || !part.filename || upload) {
        part.file.resume(); // not the file we want (an empty file input sends filename="")
        continue;
      }
      let logged = 0;
      const onProgress = (bytes) => {
        if (bytes - logged < 64 * MiB) return;
        logged = bytes;
        log(`receiving ${part.filename}: ${Math.round(bytes / MiB)} MiB`);
      };
      upload = { file: await request.tmp.write(part.file, { maxBytes, hash: 'sha256', onProgress }), filename: part.filename };
    }
  } catch (err) {
    if (err.code?.startsWith('ERR_TEMPFILE_')) throw err;
    // The parser's own errors: limits are 413, anything else a malformed body.
    throw Object.assign(new Error(err.message), { status: err.statusCode === 413 ? 413 : 400, code: err.code });
  }
  if (!upload) throw Object.assign(new Error('no file in field "file"'), { status: 400 });
  return upload;
}

function fail(request, reply, err, log) {
  // The client went away: nobody to answer (the plugin has already removed the request's files).
  if (request.raw.socket.destroyed) return reply.hijack();
  const status = err.status ?? STATUS[err.code] ?? 500;
  log(`upload failed: ${status} ${err.code ?? ''} ${err.message}`);
  if (status === 503) reply.header('retry-after', '10'); // the quota frees up as other uploads finish
  return reply.code(status).send({ error: err.code ?? 'ERR_UPLOAD', message: status === 500 ? 'internal error' : err.message });
}

await runIfMain(import.meta.url, 'fastify-upload', start);
