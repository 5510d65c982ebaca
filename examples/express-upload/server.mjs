// Express + upload(): a multipart upload streamed to a temp file in constant memory, handed off to
// a background worker, and every failure answered with its status with nothing left on disk.
// Run it with `npm run example:express-upload`, then open the URL it prints.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { upload } from 'tempfile-manager/express';
import { runIfMain } from '../shared/standalone.mjs';
import { TICKET_TTL_MS } from '../shared/upload-status.mjs';
import { createWorker } from '../shared/upload-worker.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

export async function start({ port = 0, root, maxBytes = 1024 * MiB, maxLiveBytes, minFreeBytes, jobDelayMs = 0, log = () => {} } = {}) {
  // maxLiveBytes: all uploads in flight together; minFreeBytes: refuse to fill the disk.
  const manager = new TempFileManager({ root, maxLiveBytes, minFreeBytes });
  const worker = createWorker(manager, { delayMs: jobDelayMs, log });
  const app = express();

  app.get('/', (_req, res) => res.sendFile(path.join(here, '../shared/upload-page.html')));

  // One file in the field `file`, the other limits small: a form of thousands of parts is a 413.
  // refusals: 'next': every failure, a client's refusal too, goes to fail() below, which logs it.
  const receive = upload({ manager, field: 'file', maxBytes, hash: 'sha256', maxFields: 10, maxParts: 20, onProgress: progressLog(log), refusals: 'next' });
  app.post('/upload', receive, async (req, res) => {
    // Out of the request's scope: the file now outlives the request, until a worker consumes it.
    // The ticket keeps the client's file name, made safe, in meta.filename; the file has its type's extension.
    const ticket = await req.file.handoff({ ttlMs: TICKET_TTL_MS });
    worker.enqueue(ticket);
    log(`upload ${ticket.id}: ${ticket.size} bytes handed off`);
    res.status(202).json({ job: ticket.id, ticket });
  });

  app.get('/jobs/:id', (req, res) => {
    const job = worker.job(req.params.id);
    if (job) res.json(job);
    else res.status(404).json({ error: 'no such job' });
  });

  // For the tests and the demo: this process's peak memory and the manager's counters.
  app.get('/stats', (_req, res) => {
    res.json({ pid: process.pid, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...manager.stats() });
  });

  app.locals.log = log;
  app.use(fail);

  const server = http.createServer(app);
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  async function close() {
    server.close();
    server.closeAllConnections();
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

/** Every error of upload() carries its status; the answer is JSON with the stable code. */
function fail(err, req, res, _next) {
  const status = err.statusCode ?? 500;
  req.app.locals.log(`upload failed: ${status} ${err.code ?? ''} ${err.message}`);
  if (req.socket.destroyed || res.headersSent) return; // the client went away: nobody to answer
  if (err.code === 'ERR_TEMPFILE_QUOTA_EXCEEDED') res.set('retry-after', '10'); // the quota frees up as other uploads finish
  res.status(status).json({ error: err.code ?? 'ERR_UPLOAD', message: err.expose ? err.message : 'internal error' });
}

await runIfMain(import.meta.url, 'express-upload', start);
