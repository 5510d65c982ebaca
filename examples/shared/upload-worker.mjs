// A tiny in-process job queue standing in for BullMQ, SQS or a worker pool: it receives handoff
// tickets (plain JSON), runs one job at a time, and remembers the last results for polling.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const HEAD_BYTES = 16;
const KEEP_JOBS = 100;

/** @param {import('tempfile-manager').TempFileManager} manager */
export function createWorker(manager, { delayMs = 0, log = () => {} } = {}) {
  const jobs = new Map();
  let queue = Promise.resolve();

  async function run(job, ticket) {
    if (delayMs > 0) await sleep(delayMs); // queue latency: the file waits in <root>/handoff
    job.state = 'running';
    try {
      // The lease makes this worker the only one holding the file; the digest is checked again.
      // Consumed when inspect() resolves; released if it throws (then the entry waits for a retry,
      // and the sweep removes it once it expires: this queue never retries).
      job.result = await manager.withClaim(ticket, (claimed) => inspect(claimed.path), { verifyDigest: true });
      job.state = 'done';
      log(`job ${job.id}: done, ${job.result.size} bytes, ${job.result.sha256}`);
    } catch (err) {
      job.state = 'failed';
      job.error = err.code ?? String(err);
      log(`job ${job.id}: failed, ${err.message}`);
    }
  }

  return {
    /** Queues a ticket; returns the job record that GET /jobs/:id shows. */
    enqueue(ticket) {
      const job = { id: ticket.id, state: 'queued', filename: ticket.meta?.filename ?? null };
      jobs.set(job.id, job);
      for (const id of jobs.keys()) {
        if (jobs.size <= KEEP_JOBS) break;
        jobs.delete(id);
      }
      queue = queue.then(() => run(job, ticket));
      return job;
    },
    job: (id) => jobs.get(id),
    /** Resolves once every queued job has run. */
    idle: () => queue,
  };
}

/** The job itself: size, SHA-256 and the first bytes, in one read of the file. */
async function inspect(file) {
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  for await (const chunk of fs.createReadStream(file)) {
    if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest('hex'), head: head.toString('hex') };
}
