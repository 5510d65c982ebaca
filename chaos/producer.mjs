// Streams random-sized files through the library until `stopAt`: half are handed off (the ticket
// goes to the ledger), half are scoped files checked and disposed. Plants symlinks to the canary
// tree inside its session and inside its handoff entries. Now and then runs a worker thread that
// streams without end and terminates it mid-write: the thread's session must vanish at once.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { openManager, retire, rootSwapped } from './resilient.mjs';
import { record } from './ledger.mjs';
import { prng } from './prng.mjs';

const [root, ledger, seed, stopAt, deadline, canary, staleMs] = process.argv.slice(2);
const rand = prng(Number(seed));
const options = { root, staleMs: Number(staleMs), graceMs: 1000 };
let mgr = await openManager(options);
const rootId = fs.statSync(root).ino; // the real root, whatever a swap puts at its path later
let swapsSeen = 0;
let planted = 0;
let threadsTerminated = 0;
const who = process.env.CHAOS_ID;
record(ledger, { type: 'session', who, path: mgr.sessionPath });

async function* bytes(size) {
  for (let sent = 0; sent < size; ) {
    const chunk = Buffer.alloc(Math.min(size - sent, rand.int(1, 256) * 1024), rand.int(0, 255));
    sent += chunk.length;
    yield chunk;
  }
}

function plant(dir) {
  try {
    fs.symlinkSync(canary, path.join(dir, `evil-dir-${planted}`));
    fs.symlinkSync(path.join(canary, 'precious.txt'), path.join(dir, `evil-file-${planted}`));
    planted += 2;
  } catch {
    // the directory went away under us: fine
  }
}

function rootIsReal() {
  try {
    const stat = fs.lstatSync(root);
    return stat.isDirectory() && stat.ino === rootId;
  } catch {
    return false;
  }
}

async function handOff(scope) {
  const file = await scope.write(bytes(rand.int(0, 2 * 1024 * 1024)), { suffix: '.bin', hash: 'sha256' });
  const ticket = await file.handoff({ ttlMs: Math.max(1, Number(deadline) - Date.now()) });
  record(ledger, { type: 'issued', ticket });
  if (rand.chance(0.3)) {
    // The entry's name ends with its binding to the ticket (src/handoff/binding.ts): found by its id.
    let entry;
    byPath(() => (entry = fs.readdirSync(path.join(root, 'handoff')).find((name) => name.startsWith(`entry_${ticket.id}_`))));
    if (entry !== undefined) plant(path.join(root, 'handoff', entry));
  }
}

async function scoped(scope) {
  const file = await scope.write(bytes(rand.int(0, 512 * 1024)));
  const dir = scope.dir();
  byPath(() => fs.mkdirSync(path.join(dir.path, 'nested')));
  byPath(() => fs.writeFileSync(path.join(dir.path, 'nested', 'x'), 'x'));
  if (rand.chance(0.3)) plant(dir.path);
  await new Promise((resolve) => setTimeout(resolve, rand.int(0, 50)));
  // A path handed out names the swapped-in directory's file while the root is swapped
  // (docs/security.md): only a file missing from the real root counts.
  for (const own of [file.path, dir.path]) {
    if (rootIsReal() && !fs.existsSync(own) && rootIsReal()) record(ledger, { type: 'gone', path: own });
  }
}

// A step by a path the library handed out: while the attacker has the root swapped, the path
// names the swapped-in directory (docs/security.md), where it finds nothing. The step is then
// skipped; a directory truly missing from the real root is what the check after it counts.
function byPath(step) {
  try {
    step();
  } catch (err) {
    if (err?.code !== 'ENOENT' && err?.code !== 'ENOTDIR') throw err;
  }
}

// A thread terminated mid-write: its files must be gone within a second, while this process lives.
async function threadTerminated() {
  const worker = new Worker(new URL('./thread.mjs', import.meta.url), { workerData: { root, staleMs: Number(staleMs) } });
  worker.on('error', () => {});
  // A thread started while the root is swapped cannot make its manager: it ends without a session.
  const session = await new Promise((resolve) => {
    worker.once('message', resolve);
    worker.once('exit', () => resolve(undefined));
  });
  if (session === undefined) return;
  await new Promise((resolve) => setTimeout(resolve, rand.int(0, 100)));
  await worker.terminate();
  threadsTerminated += 1;
  const until = Date.now() + 1000;
  while (fs.existsSync(session) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  if (fs.existsSync(session)) record(ledger, { type: 'thread-left', path: session });
}

// The real clock may be set apart (libfaketime): compare with stopAt on this process's own clock.
const offset = Number(process.env.CHAOS_CLOCK_OFFSET_MS ?? 0);
while (Date.now() - offset < Number(stopAt)) {
  if (rand.chance(0.04)) await threadTerminated();
  try {
    await oneRound();
  } catch (err) {
    if (!rootSwapped(err)) throw err;
    swapsSeen += 1;
    retire(mgr);
    mgr = await openManager(options);
    record(ledger, { type: 'session', who, path: mgr.sessionPath });
  }
  await new Promise((resolve) => setTimeout(resolve, rand.int(20, 120)));
}
record(ledger, { type: 'planted', count: planted });
record(ledger, { type: 'threads-terminated', count: threadsTerminated });
record(ledger, { type: 'producer-counts', swapsSeen });
try {
  await mgr.close();
} catch (err) {
  if (!rootSwapped(err)) throw err;
}

async function oneRound() {
  const scope = mgr.scope();
  try {
    if (rand.chance(0.5)) await handOff(scope);
    else await scoped(scope);
    if (rand.chance(0.1)) plant(mgr.sessionPath);
  } finally {
    await scope.remove();
  }
}
