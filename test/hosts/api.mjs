// Host A's API: makes TFM_UPLOADS uploads of random bytes, each streamed to disk with the
// library, handed off and queued as a BullMQ job carrying the ticket and the bytes' digest as
// computed here (the consumer checks the bytes against it, not against the library's digest).
// In the object-store mode the handoff uploads the file to the store (TFM_TTL_MS: the tickets' ttl).
// The first TFM_BURST uploads go as fast as they can (the throughput figure); the rest at
// TFM_RATE per second, so that the faults land while uploads still flow.
import { randomBytes, randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { emit, manager, onTerm, plantCanary, sha256, sleep, store } from './common.mjs';

const UPLOADS = Number(process.env.TFM_UPLOADS);
const BURST = Number(process.env.TFM_BURST);
const RATE = Number(process.env.TFM_RATE);
const TTL_MS = Number(process.env.TFM_TTL_MS || 3_600_000);
const PARALLEL = 4;
const mgr = manager();
const canary = await plantCanary(mgr);
const connection = new Redis(process.env.TFM_REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue('uploads', { connection, defaultJobOptions: { attempts: 100, removeOnComplete: true, removeOnFail: true } });

onTerm(async () => {
  emit('canary', { ok: canary.check() });
  await queue.close();
  await connection.quit();
  await mgr.close();
});

async function upload(n) {
  const bytes = randomBytes(randomInt(1, 64 * 1024));
  const digest = sha256(bytes);
  try {
    const file = await mgr.write(Readable.from([bytes]), { suffix: '.bin', hash: 'sha256' });
    const ticket = await file.handoff({ ttlMs: TTL_MS, ...(store && { store }) });
    await queue.add('upload', { ticket, upload: n, digest }, { jobId: `u${n}` });
    // Queues deliver at least once: every tenth job comes twice, and the second delivery must
    // find the entry held (AlreadyClaimedError) or consumed, never take it from a live worker.
    if (n % 10 === 0) await queue.add('upload', { ticket, upload: n, digest }, { jobId: `u${n}-again` });
    emit('handed', { upload: n, id: ticket.id });
  } catch (err) {
    emit('upload-failed', { upload: n, code: err.code, message: err.message });
  }
}

const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: PARALLEL }, async () => {
    while (next < BURST) await upload(next++);
  }),
);
emit('burst-handed', { ms: Date.now() - started });
const paced = [];
while (next < UPLOADS) {
  paced.push(upload(next++));
  await sleep(1000 / RATE);
}
await Promise.all(paced);
emit('all-handed', { ms: Date.now() - started });
