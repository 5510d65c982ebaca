// A BullMQ worker process: claims the job's handoff ticket, processes the file slowly (counts lines,
// hashes it) inside mgr.withClaim(): consumed when the work succeeds, released for the retry when it
// throws. Jobs are idempotent: a retried job whose entry is already consumed is done.
//   REDIS_URL=redis://127.0.0.1:6379 node examples/bullmq/worker.mjs    (EXAMPLE_ROOT, WORK_MS)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BadTicketError, HandoffExpiredError, HandoffMismatchError, HandoffNotFoundError, TempFileManager } from 'tempfile-manager';

const QUEUE = 'uploads';
const WORK_MS = Number(process.env.WORK_MS ?? 1500);
const STEPS = 10;
const log = (message) => console.log(`worker ${process.pid}: ${message}`);
const mgr = new TempFileManager({ ...(process.env.EXAMPLE_ROOT && { root: process.env.EXAMPLE_ROOT }) });
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });

async function processUpload(job) {
  try {
    // Consumed when the function resolves; released when it throws, so that the retry claims it.
    const result = await mgr.withClaim(job.data.ticket, (claimed) => countLines(job, claimed), { verifyDigest: true });
    log(`job ${job.id} done: ${result.lines} lines, entry consumed`);
    return result;
  } catch (err) {
    if (err instanceof HandoffNotFoundError) {
      // A retry of a job whose file was consumed before its worker died: the work is done.
      log(`job ${job.id}: entry already consumed, nothing to do`);
      return { alreadyDone: true };
    }
    if (err instanceof BadTicketError || err instanceof HandoffExpiredError || err instanceof HandoffMismatchError) {
      throw new UnrecoverableError(`${err.code}: ${err.message}`); // bad, expired or corrupt: retrying cannot help
    }
    throw err; // AlreadyClaimedError (a live worker holds it), or the work failed: retry later
  }
}

async function countLines(job, claimed) {
  log(`job ${job.id} claimed ${claimed.meta.name} (${claimed.size} bytes)`);
  const hash = createHash('sha256');
  let lines = 0;
  let read = 0;
  const highWaterMark = Math.max(16 * 1024, Math.ceil(claimed.size / STEPS));
  for await (const chunk of fs.createReadStream(claimed.path, { highWaterMark })) {
    hash.update(chunk);
    for (const byte of chunk) if (byte === 0x0a) lines += 1;
    read += chunk.length;
    await job.updateProgress(Math.round((100 * read) / claimed.size));
    await sleep(WORK_MS / STEPS); // stands for real work
  }
  return { name: claimed.meta.name, lines, digest: `sha256:${hash.digest('hex')}`, worker: process.pid };
}

const worker = new Worker(QUEUE, processUpload, {
  connection,
  concurrency: 1,
  // Short, so that the job of a worker that died is retried within seconds (the defaults are 30 s):
  // its lock expires after lockDuration, and the stalled check moves it back to waiting.
  lockDuration: 4000,
  stalledInterval: 1000,
  maxStalledCount: 1,
});
worker.on('ready', () => log('ready'));
worker.on('failed', (job, err) => log(`job ${job?.id} failed: ${err.message}`));
worker.on('error', (err) => log(`error: ${err.message}`));

// process.on, not once: with once, the exit hook would find no other listener left and re-raise the signal.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await worker.close();
    await connection.quit();
    await mgr.close();
    log('stopped');
  });
}
