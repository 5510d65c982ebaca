// A BullMQ worker on host B or C: claims the job's ticket, reads the bytes and checks them
// against the digest the API computed, says "claimed", works TFM_WORK_MS, consumes. Only a
// consume that succeeded is written to its witness log (TFM_WITNESS, append-only, one JSON line
// per upload): the runner counts consumptions there, not in the library's bookkeeping. In the
// object-store mode the claim goes through the store, with mgr.withClaim (the work is the callback;
// withClaim consumes when it resolves).
import fs from 'node:fs';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { emit, lib, manager, onTerm, plantCanary, sha256, sleep, store } from './common.mjs';

const WORK_MS = Number(process.env.TFM_WORK_MS);
// On this host a live holder keeps its lease however long it stalls: give the job back to the
// queue soon, so that a worker on another host, which judges the holder by its lock, gets it.
// Through the store (TFM_CLAIM_PATIENCE_MS) a lease is judged by its ETag alone, on this host as
// on any other: a worker waits long enough (over twice staleMs) to take a dead holder's over itself.
const CLAIM_PATIENCE_MS = Number(process.env.TFM_CLAIM_PATIENCE_MS || 2_500);
const witness = fs.openSync(process.env.TFM_WITNESS, 'a');
const mgr = manager();
const canary = await plantCanary(mgr);
const connection = new Redis(process.env.TFM_REDIS_URL, { maxRetriesPerRequest: null });

// AlreadyClaimedError is waited out here rather than with BullMQ's backoff: a delayed job is
// scheduled by this host's clock, which may be minutes off.
async function claim(ticket, upload) {
  const giveUp = Date.now() + CLAIM_PATIENCE_MS;
  for (;;) {
    try {
      return await mgr.claim(ticket);
    } catch (err) {
      if (!(err instanceof lib.AlreadyClaimedError) || Date.now() > giveUp) throw err;
      emit('busy', { upload, retryAfterMs: err.retryAfterMs });
      await sleep(Math.min(err.retryAfterMs, 500));
    }
  }
}

/** The job's work on a claimed file: its bytes checked against the API's digest, then WORK_MS of work; resolves with the bytes. */
async function work(claimed, upload, ticket, digest) {
  const bytes = fs.readFileSync(claimed.path);
  if (sha256(bytes) !== digest) {
    emit('bad-digest', { upload });
    throw new Error(`upload ${upload}: the bytes differ from the API's digest`);
  }
  emit('claimed', { upload, id: ticket.id });
  await sleep(WORK_MS);
  return bytes;
}

async function process_(job) {
  const { ticket, upload, digest } = job.data;
  let claimed;
  try {
    claimed = await claim(ticket, upload);
  } catch (err) {
    if (err instanceof lib.HandoffNotFoundError) return emit('already-done', { upload });
    emit('claim-failed', { upload, code: err.code, message: err.message });
    throw err;
  }
  try {
    const bytes = await work(claimed, upload, ticket, digest);
    await claimed.consume();
    fs.writeSync(witness, `${JSON.stringify({ upload, id: ticket.id, digest: sha256(bytes), host: process.env.TEMPFILE_MANAGER_HOST_ID, pid: process.pid, at: Date.now() })}\n`);
    emit('consumed', { upload });
  } catch (err) {
    if (err instanceof lib.LeaseLostError) emit('fenced', { upload, code: err.code });
    else emit('work-failed', { upload, code: err.code, message: err.message });
    throw err;
  } finally {
    if (!claimed.disposed) await claimed.release().catch(() => {});
  }
}

function witnessed(upload, id, digest, unknown = false) {
  fs.writeSync(witness, `${JSON.stringify({ upload, id, digest, host: process.env.TEMPFILE_MANAGER_HOST_ID, pid: process.pid, at: Date.now(), ...(unknown && { unknown }) })}\n`);
  emit(unknown ? 'consume-unknown' : 'consumed', { upload });
}

// Through the store: claim, read and check the bytes, work, then withClaim consumes. A consume
// whose answer never came (StoreError after the work: the host cut off while its write was on the
// way) may have landed: its witness line says `unknown`, and the runner looks for the proof that
// it did (a later delivery finds the entry gone).
async function processWithClaim(job) {
  const { ticket, upload, digest } = job.data;
  const giveUp = Date.now() + CLAIM_PATIENCE_MS;
  for (;;) {
    let held = false;
    let worked = false;
    try {
      await mgr.withClaim(ticket, async (claimed) => {
        held = true;
        await work(claimed, upload, ticket, digest);
        worked = true;
      });
      return witnessed(upload, ticket.id, digest);
    } catch (err) {
      if (worked && lib.isTempFileError(err) && err.code === 'ERR_TEMPFILE_STORE') witnessed(upload, ticket.id, digest, true);
      if (held) {
        if (err instanceof lib.LeaseLostError) emit('fenced', { upload, code: err.code });
        else emit('work-failed', { upload, code: err.code, message: err.message });
        throw err;
      }
      if (err instanceof lib.HandoffNotFoundError) return emit('already-done', { upload });
      if (!(err instanceof lib.AlreadyClaimedError) || Date.now() > giveUp) {
        emit('claim-failed', { upload, code: err.code, message: err.message });
        throw err;
      }
      emit('busy', { upload, retryAfterMs: err.retryAfterMs });
      await sleep(Math.min(err.retryAfterMs, 500));
    }
  }
}

// The jobs under way, so that a stop waits for their consume to settle: a worker of a host cut off
// mid-consume, stopped once the network is back, would otherwise exit with its consume still
// waiting on a dead connection (the store's timeoutMs), and write no witness line at all, where
// one that says `unknown` (or `consumed`) is due.
const underWay = new Set();
function tracked(processor) {
  return (job) => {
    const run = processor(job);
    underWay.add(run);
    run.then(
      () => underWay.delete(run),
      () => underWay.delete(run),
    );
    return run;
  };
}

const worker = new Worker('uploads', tracked(store ? processWithClaim : process_), {
  connection,
  concurrency: 1,
  // A dead or cut-off worker's job comes back within seconds: its lock in Redis expires after
  // lockDuration, and the stalled check runs every stalledInterval.
  lockDuration: 3000,
  stalledInterval: 1000,
  maxStalledCount: 100,
});
worker.on('error', (err) => emit('bullmq-error', { message: err.message }));
worker.on('ready', () => emit('ready'));

onTerm(async () => {
  emit('canary', { ok: canary.check() });
  // At most the store's request timeout (15 s on Azure, 5 s on S3) and a little more.
  await Promise.race([Promise.allSettled([...underWay]), sleep(17_000)]);
  await worker.close(true);
  await connection.quit();
  await mgr.close();
});
