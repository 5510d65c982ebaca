// Claims issued tickets from the ledger, verifies size and digest, records the delivery, then
// consumes: through mgr.withClaim() or a claim's block and its disposal. Some jobs throw after
// reading their file (their entry must come back for a retry). Sometimes blocks its event loop
// past staleMs while holding a lease, on purpose.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openManager, retire, rootSwapped } from './resilient.mjs';
import { record } from './ledger.mjs';
import { prng } from './prng.mjs';

const [root, ledger, seed, stopFile, staleMs] = process.argv.slice(2);
const rand = prng(Number(seed));
const options = { root, staleMs: Number(staleMs), graceMs: 1000 };
let mgr = await openManager(options);
// keep() now and then moves a delivered file to a directory outside the root, where the attacker
// plants FIFOs at the names it will use: a keep() there must be refused at once, never hang.
const dest = process.env.CHAOS_DEST;
const counts = { claims: 0, alreadyClaimed: 0, notFoundAfterDelivery: 0, leaseLost: 0, blocked: 0, threw: 0, kept: 0, keepRefused: 0, swapsSeen: 0 };
let swapSeen = false;

// What the ledger says so far, read incrementally: issued tickets not yet delivered.
const issued = new Map();
const delivered = new Set();
let ledgerOffset = 0;
let partial = '';
function pending() {
  const fd = fs.openSync(ledger, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(size - ledgerOffset);
    fs.readSync(fd, buffer, 0, buffer.length, ledgerOffset);
    ledgerOffset = size;
    const lines = (partial + buffer.toString('utf8')).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const event = parse(line);
      if (event?.type === 'issued') issued.set(event.ticket.id, event.ticket);
      if (event?.type === 'delivered') delivered.add(event.id);
    }
  } finally {
    fs.closeSync(fd);
  }
  const now = Date.now();
  return [...issued.values()].filter((t) => !delivered.has(t.id) && (notBefore.get(t.id) ?? 0) <= now);
}

// Tickets another worker holds: try them again when their lease may have gone stale.
const notBefore = new Map();

function parse(line) {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function sha256(file) {
  return `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
}

// A job that throws after its claim: its entry must come back for a retry (released by withClaim,
// or by the disposal of the claim), never be consumed: the ticket stays undelivered until a job
// of it succeeds. Disposal that consumed would show here as lost tickets.
const THROW = 0.15;
class JobFailed extends Error {}
class Overtaken extends Error {}

/** The job: holds, reads and checks the bytes, then throws (sometimes) or records the delivery. */
function job(ticket, claimed, who, throws) {
  record(ledger, { type: 'hold', id: ticket.id, who });
  if (rand.chance(0.02)) {
    counts.blocked += 1;
    const until = Date.now() + Number(staleMs) * 1.5;
    // A live claimer whose loop is stuck keeps its lease on its own machine; a claimer of another
    // machine (PID namespace) sees its heartbeat stop and takes the lease over: this one is fenced.
    while (Date.now() < until) {}
  }
  let size, digest;
  try {
    size = fs.statSync(claimed.path).size;
    digest = sha256(claimed.path);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    throw new Overtaken(); // its file is another's now
  }
  if (size !== ticket.size || digest !== ticket.digest) record(ledger, { type: 'mismatch', id: ticket.id, size, digest });
  if (throws) {
    counts.threw += 1;
    record(ledger, { type: 'threw', id: ticket.id, who });
    throw new JobFailed('the job failed after reading its file');
  }
  record(ledger, { type: 'delivered', id: ticket.id, size });
}

async function work(ticket) {
  const who = process.env.CHAOS_ID;
  const options = { verifyDigest: rand.chance(0.5) };
  const throws = rand.chance(THROW);
  let claimed = false;
  try {
    if (rand.chance(0.5)) {
      // The helper: consumed when the job returns, released when it throws.
      await mgr.withClaim(ticket, (held) => {
        claimed = true;
        counts.claims += 1;
        job(ticket, held, who, throws);
      }, options);
    } else {
      // What `await using held = await mgr.claim(ticket)` runs (written out: Node 20 has no
      // `using` syntax): the block, then the disposal, whatever the block did. Done, the job
      // consumes (or, sometimes, releases) explicitly; a throw leaves the entry to the disposal.
      const held = await mgr.claim(ticket, options);
      claimed = true;
      counts.claims += 1;
      let blockError;
      try {
        job(ticket, held, who, throws);
        if (rand.chance(0.1)) {
          record(ledger, { type: 'releasing', id: ticket.id, who });
          await held.release();
        }
        else if (dest && rand.chance(0.3)) await keepOrConsume(held, ticket);
        else await held.consume();
      } catch (err) {
        blockError = err;
      }
      try {
        await held[Symbol.asyncDispose]();
      } catch (disposeError) {
        if (blockError === undefined) throw disposeError;
        if (typeof blockError === 'object') blockError.releaseError = disposeError; // as SuppressedError would carry it
      }
      if (blockError !== undefined) throw blockError;
    }
    record(ledger, { type: 'unhold', id: ticket.id, who, ok: true });
  } catch (err) {
    if (rootSwapped(err)) {
      // Seen mid-job: the entry stays held by this manager until it is retired; another claimer
      // takes it over once its heartbeat stops (at-least-once), so this hold did not end well.
      swapSeen = true;
      if (claimed) record(ledger, { type: 'unhold', id: ticket.id, who, ok: false });
      return;
    }
    if (!claimed) return claimFailed(ticket, err);
    const released = !(err instanceof Overtaken) && err.code !== 'ERR_TEMPFILE_LEASE_LOST' && err.releaseError === undefined;
    if (err instanceof JobFailed && released) {
      record(ledger, { type: 'unhold', id: ticket.id, who, ok: true });
      return;
    }
    const lost = err instanceof Overtaken || err.code === 'ERR_TEMPFILE_LEASE_LOST' || err.releaseError?.code === 'ERR_TEMPFILE_LEASE_LOST';
    if (!lost) throw err;
    record(ledger, { type: 'unhold', id: ticket.id, who, ok: false }); // overtaken while stalled: fenced
    counts.leaseLost += 1;
  }
}

/** Keeps the file outside the root; a name the attacker took (a FIFO) is refused at once: consumed then. */
async function keepOrConsume(held, ticket) {
  try {
    await held.keep(path.join(dest, `${ticket.id}.kept`));
    counts.kept += 1;
  } catch (err) {
    if (err.code !== 'ERR_TEMPFILE_DESTINATION_EXISTS') throw err;
    counts.keepRefused += 1;
    await held.consume();
  }
}

function claimFailed(ticket, err) {
  if (err.code === 'ERR_TEMPFILE_ALREADY_CLAIMED') {
    counts.alreadyClaimed += 1;
    notBefore.set(ticket.id, Date.now() + Math.min(err.retryAfterMs, 1000));
  } else if (err.code === 'ERR_TEMPFILE_HANDOFF_NOT_FOUND') {
    // Gone: fine only if someone delivered it (and consumed it) meanwhile.
    pending();
    if (delivered.has(ticket.id)) counts.notFoundAfterDelivery += 1;
    else record(ledger, { type: 'lost', id: ticket.id });
  } else if (err.code === 'ERR_TEMPFILE_HANDOFF_MISMATCH') record(ledger, { type: 'mismatch', id: ticket.id, why: err.message });
  else throw err;
}

while (!fs.existsSync(stopFile)) {
  const tickets = pending();
  if (tickets.length === 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    continue;
  }
  await work(rand.pick(tickets));
  if (swapSeen) {
    swapSeen = false;
    counts.swapsSeen += 1;
    retire(mgr);
    mgr = await openManager(options);
  }
}
record(ledger, { type: 'worker-counts', ...counts });
try {
  await mgr.close();
} catch (err) {
  if (!rootSwapped(err)) throw err;
}
