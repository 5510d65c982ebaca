// The chaos run: producers, workers and sweepers in their own processes, an attacker of the same
// uid (attacker.mjs: FIFOs, hard links and symlinks planted, FIFOs at keep() destinations, the root
// swapped for a symlink now and then), a killer that SIGKILLs
// and SIGTERMs producers and workers at random and restarts them, then the invariants.
// Every process has a host id of its own; some run with their clock set apart (libfaketime), and,
// as root, some in a PID namespace of their own (another machine, as far as pids go).
//   npm run chaos -- --seconds 60 --seed 42 [--producers 3] [--workers 3] [--sweepers 2] [--json FILE]
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TempFileManager } from 'tempfile-manager';
import { readLedger, record } from './ledger.mjs';
import { derive, prng } from './prng.mjs';
import { listTree } from './tree.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    producers: { type: 'string', default: '3' },
    workers: { type: 'string', default: '3' },
    sweepers: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
const STALE_MS = 3000;
const GRACE_MS = 1000; // the children's graceMs
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const CLOCK_OFFSETS = [['', 0], ['-1h', -3_600_000], ['-20m', -1_200_000]]; // relative offsets of both signs between any two
const canFakeTime = fs.existsSync(LIBFAKETIME);
const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
// How long a SIGKILLed producer's session used to be allowed to stay, on the clock: a figure now
// (how many outlived it), not the invariant, since the machine's load decides when a sweep runs.
const LINGER_LOCAL_MS = 3000;
const LINGER_REMOTE_MS = 2 * STALE_MS + GRACE_MS + 2000;
// An orphan with no sweep that could judge it for this long: the sweepers are stuck (a hang guard).
const NO_SWEEP_MS = 60_000;
const DRAIN_MS = 20_000;
const rand = prng(seed);
console.log(`chaos: ${seconds} s, seed ${seed} (rerun with --seed ${seed})${canFakeTime ? '' : ', no libfaketime'}${canUnshare ? '' : ', no PID namespaces (not root)'}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-chaos-'));
const root = path.join(work, 'root');
const ledger = path.join(work, 'ledger.jsonl');
const canary = path.join(work, 'canary');
const stopFile = path.join(work, 'stop');
// Outside the root: where workers keep() files (the attacker plants FIFOs there first), and the
// directory the attacker swaps in for the root now and then.
const dest = path.join(work, 'dest');
const victim = path.join(work, 'victim');
fs.mkdirSync(dest, { mode: 0o700 });
const start = Date.now();
const stopAt = start + seconds * 1000;
const deadline = stopAt + DRAIN_MS + 5000; // every entry expires then: the final sweep removes leftovers
plantCanary();
fs.writeFileSync(ledger, '');
const canaryBefore = hashTree(canary);
new TempFileManager({ root, sweepOnStart: false, exitHook: false }).closeSync(); // creates the root

const here = import.meta.dirname;
const children = new Map(); // name -> { child, incarnation, killedWith }
const deaths = { SIGKILL: 0, SIGTERM: 0, errors: [] };

const where = { namespaced: 0, clockApart: 0 };
const namespacedByWho = new Map(); // who -> whether it ran in a PID namespace of its own

function launch(name, script, args) {
  const incarnation = (children.get(name)?.incarnation ?? -1) + 1;
  const childSeed = derive(seed, name, String(incarnation));
  const place = prng(derive(childSeed, 'where'));
  const [faketime, offsetMs] = canFakeTime ? place.pick(CLOCK_OFFSETS) : ['', 0];
  const namespaced = canUnshare && place.chance(0.25);
  const who = `${name}#${incarnation}`;
  const env = { ...process.env, TEMPFILE_MANAGER_HOST_ID: `h-${name}-${incarnation % 3}`, CHAOS_ID: who, CHAOS_CLOCK_OFFSET_MS: String(offsetMs), CHAOS_DEST: dest };
  if (faketime) Object.assign(env, { FAKETIME: faketime, LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_RESET: '1' });
  const command = [process.execPath, path.join(here, script), root, ledger, String(childSeed), ...args];
  // In its own PID namespace the child is pid 1, which ignores a re-raised SIGTERM: such children are only SIGKILLed.
  if (namespaced) command.unshift('unshare', '--pid', '--fork', '--mount-proc', '--kill-child');
  where.namespaced += namespaced ? 1 : 0;
  namespacedByWho.set(who, namespaced);
  where.clockApart += faketime ? 1 : 0;
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  const entry = { child, incarnation, who, namespaced, killedWith: undefined, stderr: '' };
  child.stderr.on('data', (d) => (entry.stderr = (entry.stderr + d).slice(-4000)));
  child.on('exit', (code, signal) => {
    entry.exited = true;
    if (entry.killedWith) record(ledger, { type: 'died', who });
    if (entry.killedWith) {
      if (signal !== entry.killedWith) {
        deaths.errors.push(`${name} was sent ${entry.killedWith} but ended with ${signal ?? code}: ${entry.stderr.trim().split('\n').slice(0, 8).join(' | ')}`);
      }
    } else if (code !== 0) {
      deaths.errors.push(`${name} died on its own (${signal ?? `exit ${code}`}): ${entry.stderr.trim().split('\n').slice(0, 8).join(' | ')}`);
    }
  });
  children.set(name, entry);
  return entry;
}

const producerArgs = () => [String(stopAt), String(deadline), canary, String(STALE_MS)];
const workerArgs = () => [stopFile, String(STALE_MS)];
const producers = Array.from({ length: Number(values.producers) }, (_, i) => `producer-${i}`);
const workers = Array.from({ length: Number(values.workers) }, (_, i) => `worker-${i}`);
for (const name of producers) launch(name, 'producer.mjs', producerArgs());
for (const name of workers) launch(name, 'worker.mjs', workerArgs());
for (let i = 0; i < Number(values.sweepers); i++) launch(`sweeper-${i}`, 'sweeper.mjs', [stopFile, String(STALE_MS)]);
launch('attacker', 'attacker.mjs', [stopFile, canary, dest, victim]);

// A SIGKILLed producer's session must be gone once a sweep that could judge it dead has ended:
// for a sweeper of this machine (the same PID namespace), the first sweep it started after the
// death; for any other, by the heartbeat rule, a sweep started staleMs (and graceMs) after the end
// of one that saw the last beat. Counted in sweeps, never in milliseconds: on a loaded machine a
// sweep may start seconds late, and that is not a session missed.
const lingering = [];
const orphans = { watched: 0, pastOldLimit: 0, maxLifetimeMs: 0 };
const orphanChecks = [];
const slowOrphans = []; // details of those that outlived the old limit
const rootIno = fs.statSync(root).ino;
function watchOrphan(entry, diedAt) {
  const session = readLedger(ledger).findLast((e) => e.type === 'session' && e.who === entry.who)?.path;
  if (session === undefined) return; // killed before it made one
  orphans.watched += 1;
  orphanChecks.push(checkOrphan({ session, namespaced: entry.namespaced, diedAt }));
}

async function checkOrphan(orphan) {
  for (;;) {
    // The ledger first: a sweep it lists as ended ended before the look at the session below.
    const judgedBy = judgingSweep(readLedger(ledger), orphan);
    const there = sessionThere(orphan.session);
    const age = Date.now() - orphan.diedAt;
    if (there === false) return noteLifetime(orphan, age);
    if (there === true && judgedBy !== undefined) {
      return lingering.push({ ...orphan, aliveAfterSweep: judgedBy, ageMs: age });
    }
    if (age > NO_SWEEP_MS) return lingering.push({ ...orphan, noSweepWithinMs: NO_SWEEP_MS });
    await sleep(100);
  }
}

function noteLifetime(orphan, age) {
  orphans.maxLifetimeMs = Math.max(orphans.maxLifetimeMs, age);
  if (age <= (orphan.namespaced ? LINGER_REMOTE_MS : LINGER_LOCAL_MS)) return;
  orphans.pastOldLimit += 1;
  // Why it lived so long: when the first sweep after the death started, and how long sweeps took.
  const after = readLedger(ledger).filter((e) => e.type === 'swept' && e.started > orphan.diedAt);
  const firstSweepAfterMs = after.length === 0 ? null : Math.min(...after.map((e) => e.started)) - orphan.diedAt;
  slowOrphans.push({ session: path.basename(orphan.session), namespaced: orphan.namespaced, ageMs: age, sweepsEndedSinceTheKill: after.length, firstSweepAfterMs });
}

/** Whether the session is there: undefined while the attacker has the root swapped (the path names the victim then). */
function sessionThere(session) {
  const real = () => {
    try {
      return fs.lstatSync(root).ino === rootIno;
    } catch {
      return false;
    }
  };
  if (!real()) return undefined;
  const there = fs.existsSync(session);
  return real() ? there : undefined;
}

/** The first sweep, as the ledger tells it, after whose end the orphan must have been gone; undefined if none yet. */
function judgingSweep(all, orphan) {
  // A process killed in its PID namespace dies when unshare does, a moment later: its lock's last
  // change (ctime, the heartbeat) may come after the kill was seen.
  const lastBeat = Math.max(orphan.diedAt, lockChanged(orphan.session));
  const sweeps = all.filter((e) => e.type === 'swept' && e.started > lastBeat);
  const candidates = [];
  for (const who of new Set(sweeps.map((e) => e.who))) {
    const own = sweeps.filter((e) => e.who === who);
    const sameMachine = !orphan.namespaced && !namespacedByWho.get(who);
    const first = own[0];
    const judging = sameMachine ? first : own.find((e) => e.started >= first.ended + Math.max(STALE_MS, GRACE_MS));
    if (judging !== undefined) candidates.push({ who, started: judging.started, ended: judging.ended });
  }
  return candidates.sort((a, b) => a.ended - b.ended)[0];
}

function lockChanged(session) {
  try {
    return fs.lstatSync(`${session}.lock`).ctimeMs;
  } catch {
    return 0;
  }
}

// The killer.
while (Date.now() < stopAt - 1000) {
  await sleep(rand.int(300, 1200));
  const name = rand.pick([...producers, ...workers]);
  const entry = children.get(name);
  if (entry.exited) continue;
  const signal = entry.namespaced || rand.chance(0.6) ? 'SIGKILL' : 'SIGTERM';
  entry.killedWith = signal;
  entry.child.kill(signal);
  deaths[signal] += 1;
  await exited(entry);
  if (signal === 'SIGKILL' && name.startsWith('producer')) watchOrphan(entry, Date.now());
  await sleep(rand.chance(0.5) ? 0 : rand.int(0, 300)); // half the time, a restart right after the kill
  if (Date.now() < stopAt - 500) launch(name, name.startsWith('producer') ? 'producer.mjs' : 'worker.mjs', name.startsWith('producer') ? producerArgs() : workerArgs());
}

// Producers stop at stopAt by themselves; workers drain what was issued, then stop.
await Promise.all(producers.map((name) => exited(children.get(name))));
for (const name of workers) if (children.get(name).exited) launch(name, 'worker.mjs', workerArgs());
const drainEnd = Date.now() + DRAIN_MS;
while (Date.now() < drainEnd && undelivered(readLedger(ledger)).length > 0) await sleep(200);
await Promise.all(orphanChecks); // the sweepers run until the last killed producer's time is up
fs.writeFileSync(stopFile, '');
await Promise.all([...children.values()].map(exited));

// One final sweep once every entry has expired: a first look, and a second one a staleMs later,
// so that sessions of other PID namespaces are judged by their stopped heartbeats.
const finalSweeper = new TempFileManager({ root, staleMs: STALE_MS, graceMs: 0, sweepOnStart: false, sweepIntervalMs: 0, exitHook: false });
await finalSweeper.sweep();
await sleep(Math.max(deadline - Date.now(), 0) + STALE_MS + 1500);
const finalSweep = await finalSweeper.sweep();

const events = readLedger(ledger);
const issued = events.filter((e) => e.type === 'issued');
const delivered = events.filter((e) => e.type === 'delivered');
const leftovers = listTree(root).filter((p) => p !== 'handoff' && p !== '.tempfile-manager');
const summary = {
  seed,
  seconds,
  processesKilled: { SIGKILL: deaths.SIGKILL, SIGTERM: deaths.SIGTERM },
  ticketsIssued: issued.length,
  ticketsDelivered: new Set(delivered.map((e) => e.id)).size,
  duplicatesDelivered: delivered.length - new Set(delivered.map((e) => e.id)).size,
  bytesMoved: delivered.reduce((sum, e) => sum + e.size, 0),
  racesTried: raceCounts(events),
  orphans,
  placement: { namespacedProcesses: where.namespaced, processesWithClockApart: where.clockApart },
  invariants: {
    doubleHeld: doubleHeld(events).length,
    orphansLingering: lingering.length,
    threadFilesLeft: events.filter((e) => e.type === 'thread-left').length,
    lostTickets: undelivered(events).length + events.filter((e) => e.type === 'lost').length,
    mismatchedReads: events.filter((e) => e.type === 'mismatch').length,
    liveFilesGone: events.filter((e) => e.type === 'gone').length,
    leftoversAfterFinalSweep: leftovers.length,
    outsideFilesChanged: (canaryBefore === hashTree(canary) ? 0 : 1) + events.filter((e) => e.type === 'victim-changed').length,
    processesDiedOfOurErrors: deaths.errors.length,
    sweepErrors: events.filter((e) => e.type === 'sweep-error').length + finalSweep.errors.length,
  },
};
report(summary, {
  leftovers,
  errors: deaths.errors,
  sweepErrors: events.filter((e) => e.type === 'sweep-error').slice(0, 5),
  doubleHeld: doubleHeld(events).slice(0, 5),
  lingering: lingering.slice(0, 5),
  slowOrphans: slowOrphans.slice(0, 5),
});
if (values.json) fs.writeFileSync(values.json, JSON.stringify(summary, null, 2));
const violations = Object.values(summary.invariants).reduce((a, b) => a + b, 0);
if (violations === 0) fs.rmSync(work, { recursive: true, force: true });
else console.log(`kept the run's directory for inspection: ${work}`);
process.exitCode = violations === 0 ? 0 : 1;

function undelivered(all) {
  const done = new Set(all.filter((e) => e.type === 'delivered').map((e) => e.id));
  return all.filter((e) => e.type === 'issued' && !done.has(e.ticket.id));
}

/**
 * Pairs of holds of one ticket that overlapped in the ledger's order (a hold lasts from its
 * 'hold' line to its 'unhold' line, or its process's death) and both ended by a successful
 * consume or release: two holders at once. A holder overtaken while stalled ends with ok: false
 * (fenced): that is not a double hold. A hold that ends by a release is over once its job said
 * so ('threw', or 'releasing' before an explicit release): the release hands the file on before
 * its 'unhold' line is written, and the next claimer may write its 'hold' in between.
 */
function doubleHeld(all) {
  const open = new Map(); // ticket id -> Map(who -> hold)
  const releasing = new Map(); // `${id} ${who}` -> a hold whose job is over, its release under way
  const finished = [];
  for (const e of all) {
    if (e.type === 'hold') {
      const holds = open.get(e.id) ?? new Map();
      const hold = { id: e.id, who: e.who, overlaps: [...holds.values()], ok: false };
      for (const other of holds.values()) other.overlaps.push(hold);
      holds.set(e.who, hold);
      open.set(e.id, holds);
    } else if (e.type === 'threw' || e.type === 'releasing') {
      const hold = open.get(e.id)?.get(e.who);
      if (!hold) continue;
      open.get(e.id).delete(e.who);
      releasing.set(`${e.id} ${e.who}`, hold);
    } else if (e.type === 'unhold') {
      const key = `${e.id} ${e.who}`;
      const hold = open.get(e.id)?.get(e.who) ?? releasing.get(key);
      if (!hold) continue;
      hold.ok = e.ok;
      open.get(e.id)?.delete(e.who);
      releasing.delete(key);
      finished.push(hold);
    } else if (e.type === 'died') {
      for (const holds of open.values()) holds.delete(e.who);
    }
  }
  return finished.filter((h) => h.ok).flatMap((h) => h.overlaps.filter((o) => o.ok && o.who < h.who).map((o) => ({ id: h.id, holders: [o.who, h.who] })));
}

function raceCounts(all) {
  const sum = (type, key) => all.filter((e) => e.type === type).reduce((s, e) => s + (e[key] ?? 0), 0);
  return {
    claimsRefusedAsAlreadyClaimed: sum('worker-counts', 'alreadyClaimed'),
    leasesLostAndFenced: sum('worker-counts', 'leaseLost'),
    jobsThatThrewAndWereRetried: all.filter((e) => e.type === 'threw').length,
    claimersBlockedPastStaleMs: sum('worker-counts', 'blocked'),
    sweepsRunConcurrently: sum('sweeper-counts', 'sweeps'),
    symlinksToOutsidePlanted: sum('planted', 'count'),
    threadsTerminatedMidWrite: sum('threads-terminated', 'count'),
    holdsTakenOverFromLiveHolders: all.filter((e) => e.type === 'unhold' && !e.ok).length,
    rootSwapsByTheAttacker: sum('attacker-counts', 'rootSwaps'),
    rootSwapsSeenAndRecoveredFrom: sum('producer-counts', 'swapsSeen') + sum('worker-counts', 'swapsSeen') + sum('sweeper-counts', 'swapsSeen'),
    fifosPlanted: sum('attacker-counts', 'fifos'),
    hardLinksToOutsidePlanted: sum('attacker-counts', 'hardLinks'),
    fifosPlantedAtKeepDestinations: sum('attacker-counts', 'destinationFifos'),
    keepsDone: sum('worker-counts', 'kept'),
    keepsRefusedAtAPlantedName: sum('worker-counts', 'keepRefused'),
  };
}

function report(s, details) {
  console.log(`processes killed: ${s.processesKilled.SIGKILL} by SIGKILL, ${s.processesKilled.SIGTERM} by SIGTERM`);
  console.log(`tickets: ${s.ticketsIssued} issued, ${s.ticketsDelivered} delivered, ${s.duplicatesDelivered} delivered more than once`);
  console.log(`bytes moved: ${s.bytesMoved}`);
  for (const [k, v] of Object.entries(s.racesTried)) console.log(`races: ${k}: ${v}`);
  for (const [k, v] of Object.entries(s.placement)) console.log(`placement: ${k}: ${v}`);
  console.log(`orphans: ${s.orphans.watched} watched, ${s.orphans.pastOldLimit} outlived 3 s (9 s in a PID namespace) before a sweep removed them, the longest ${s.orphans.maxLifetimeMs} ms`);
  for (const [k, v] of Object.entries(s.invariants)) console.log(`invariant ${v === 0 ? 'held' : 'BROKEN'}: ${k}: ${v}`);
  if (details.leftovers.length) console.log('leftovers:', details.leftovers.slice(0, 10));
  for (const e of details.errors.slice(0, 10)) console.log('process error:', e);
  for (const e of details.sweepErrors) console.log('sweep error:', JSON.stringify(e));
  for (const e of details.doubleHeld) console.log('double hold:', JSON.stringify(e));
  for (const e of details.lingering) console.log('orphan lingering:', JSON.stringify(e));
  for (const e of details.slowOrphans) console.log('orphan outlived the old limit (a figure, not a violation):', JSON.stringify(e));
}

function plantCanary() {
  fs.mkdirSync(path.join(canary, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(canary, 'precious.txt'), 'must never change');
  fs.writeFileSync(path.join(canary, 'sub', 'deep.txt'), 'nor this');
}

function hashTree(dir) {
  const hash = createHash('sha256');
  for (const rel of listTree(dir)) {
    const full = path.join(dir, rel);
    const stat = fs.lstatSync(full);
    hash.update(`${rel}:${stat.mode}:${stat.isFile() ? fs.readFileSync(full, 'hex') : ''}\n`);
  }
  return hash.digest('hex');
}



function exited(entry) {
  return entry.exited ? Promise.resolve() : new Promise((resolve) => entry.child.once('exit', () => resolve()));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
