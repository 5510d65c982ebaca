// Express + busboy: a multipart upload streamed to a temp file in constant memory, handed off to
// a background worker, and every failure mapped to a status with nothing left on disk.
// Run it with `npm run example:express-upload`, then open the URL it prints.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import busboy from 'busboy';
import express from 'express';
import { TempFileManager } from 'tempfile-manager';
import { tempScope } from 'tempfile-manager/express';
import { runIfMain } from '../shared/standalone.mjs';
import { STATUS, TICKET_TTL_MS } from '../shared/upload-status.mjs';
import { createWorker } from '../shared/upload-worker.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function start({ port = 0, root, maxBytes = 1024 * MiB, maxLiveBytes, minFreeBytes, jobDelayMs = 0, log = () => {} } = {}) {
  // maxLiveBytes: all uploads in flight together; minFreeBytes: refuse to fill the disk.
  const manager = new TempFileManager({ root, maxLiveBytes, minFreeBytes });
  const worker = createWorker(manager, { delayMs: jobDelayMs, log });
  const app = express();

  app.get('/', (_req, res) => res.sendFile(path.join(here, '../shared/upload-page.html')));

  app.post('/upload', tempScope(manager), async (req, res) => {
    try {
      const { file, filename } = await receiveFile(req, { maxBytes, log });
      // Out of the request's scope: the file now outlives the request, until a worker consumes it.
      const ticket = await file.handoff({ ttlMs: TICKET_TTL_MS, meta: { filename: filename.slice(0, 255) } });
      worker.enqueue(ticket);
      log(`upload ${ticket.id}: ${ticket.size} bytes handed off`);
      res.status(202).json({ job: ticket.id, ticket });
    } catch (err) {
      fail(req, res, err, log);
    }
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

/** Parses the form and streams its one file, field `file`, into `req.tmp`. */
function receiveFile(req, { maxBytes, log }) {
  return new Promise((resolve, reject) => {
    let form;
    try {
      // fileSize is one past maxBytes: busboy silently truncates at its limit, while write()
      // sees the extra byte and fails with SizeLimitError.
      form = busboy({ headers: req.headers, limits: { fileSize: maxBytes + 1, files: 1, fields: 10, parts: 20 } });
    } catch (err) {
      reject(new HttpError(400, err.message)); // not multipart, or no boundary
      return;
    }
    let upload;
    let fileStream;
    const stop = (err) => {
      req.unpipe(form);
      fileStream?.destroy(err); // write() then removes its partial file
      reject(err);
    };

    form.on('file', (name, stream, { filename }) => {
      stream.on('error', () => {}); // reported through write() or the form's own 'error'
      if (name !== 'file' || !filename || upload) {
        stream.resume(); // not the file we want (an empty file input sends filename="")
        return;
      }
      fileStream = stream;
      let logged = 0;
      const onProgress = (bytes) => {
        if (bytes - logged < 64 * MiB) return;
        logged = bytes;
        log(`receiving ${filename}: ${Math.round(bytes / MiB)} MiB`);
      };
      upload = req.tmp.write(stream, { maxBytes, hash: 'sha256', onProgress }).then((file) => ({ file, filename }));
      upload.catch(stop);
    });
    form.on('error', (err) => stop(new HttpError(400, `malformed multipart body: ${err.message}`)));
    form.on('partsLimit', () => stop(new HttpError(413, 'too many parts')));
    form.on('fieldsLimit', () => stop(new HttpError(413, 'too many fields')));
    form.on('filesLimit', () => stop(new HttpError(413, 'one file per upload')));
    form.on('close', () => (upload ? upload.then(resolve, reject) : reject(new HttpError(400, 'no file in field "file"'))));
    req.on('close', () => {
      if (!req.complete) stop(Object.assign(new Error('the client went away'), { code: 'ECONNRESET' }));
    });
    req.pipe(form);
  });
}

function fail(req, res, err, log) {
  if (req.socket.destroyed || res.headersSent) return; // the client went away: nobody to answer
  const status = err instanceof HttpError ? err.status : (STATUS[err.code] ?? 500);
  log(`upload failed: ${status} ${err.code ?? ''} ${err.message}`);
  if (status === 503) res.set('retry-after', '10'); // the quota frees up as other uploads finish
  res.status(status).json({ error: err.code ?? 'ERR_UPLOAD', message: status === 500 ? 'internal error' : err.message });
}

await runIfMain(import.meta.url, 'express-upload', start);
