// The HTTP API: POST /uploads?name=report.csv streams the body to disk with the library, hands
// the file off, and enqueues the ticket as a BullMQ job. The worker (worker.mjs) does the rest.
//   REDIS_URL=redis://127.0.0.1:6379 node examples/bullmq/api.mjs    (PORT, EXAMPLE_ROOT)
import path from 'node:path';
import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { TempFileManager } from 'tempfile-manager';
import { tempScope } from 'tempfile-manager/express';

const QUEUE = 'uploads';
const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
const mgr = new TempFileManager({ ...(process.env.EXAMPLE_ROOT && { root: process.env.EXAMPLE_ROOT }) });
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queue = new Queue(QUEUE, {
  connection,
  // Failed attempts (e.g. AlreadyClaimedError while another live worker holds the entry) are retried.
  defaultJobOptions: { attempts: 5, backoff: { type: 'fixed', delay: 1000 } },
});

const app = express();
app.use(tempScope(mgr));

app.post('/uploads', async (req, res) => {
  const name = path.basename(String(req.query.name ?? 'upload.bin'));
  // The client names the file: keep only a plain extension for the suffix on disk.
  const suffix = /^\.[A-Za-z0-9]{1,16}$/.test(path.extname(name)) ? path.extname(name) : '';
  const file = await req.tmp.write(req, { suffix, maxBytes: MAX_UPLOAD_BYTES, hash: 'sha256' });
  const ticket = await file.handoff({ ttlMs: 3_600_000, meta: { name } });
  let job;
  try {
    job = await queue.add('process-upload', { ticket });
  } catch (err) {
    // No job will ever claim the entry: remove it now rather than at its expiry.
    await (await mgr.claim(ticket)).consume();
    throw err;
  }
  res.status(202).json({ jobId: job.id, entry: ticket.id, size: ticket.size, digest: ticket.digest });
});

const STATUS = { ERR_TEMPFILE_SIZE_LIMIT: 413, ERR_TEMPFILE_INVALID_OPTION: 400, ERR_TEMPFILE_QUOTA_EXCEEDED: 507, ERR_TEMPFILE_NO_SPACE: 507, ERR_TEMPFILE_ABORTED: 499 };
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.status(STATUS[err.code] ?? 500).json({ error: err.code ?? 'ERR_INTERNAL', message: err.message });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`api listening on http://127.0.0.1:${server.address().port}/uploads`);
});

// process.on, not once: with once, the exit hook would find no other listener left and re-raise the signal.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    server.close();
    server.closeAllConnections();
    await queue.close();
    await connection.quit();
    await mgr.close();
    process.exit(0);
  });
}
