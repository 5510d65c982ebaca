// Child of gate.mjs: one sample of one operation, by one build of the library or by the floor.
// argv: <dist directory | "floor" | "pinned-floor"> <operation> <scratch directory>. Prints { cpuMicros, wallMicros }
// per operation: the process's CPU time (every thread's, the pool's included) and the wall time.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { deadOwnerOf, plantDeadSessions } from './lib.mjs';

const [who, operation, dir] = process.argv.slice(2);
const fsp = fs.promises;
const MiB = 1024 * 1024;
const HOST_ID = 'gate-host';
const pinnedFloor = who === 'pinned-floor';
const floor = who === 'floor' || pinnedFloor;
const lib = floor ? undefined : await import(pathToFileURL(path.join(who, 'index.js')).href);
const manager = (options = {}) => new lib.TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, exitHook: false, ...options });

let n = 0;
const fresh = () => path.join(dir, `f${n++}`);

/**
 * Each operation: how many to time (after `warmup` untimed), and how to make its runner. A sample
 * lasts at least some 50 ms of CPU: a shorter one (400 creates, 12 ms) read 0.72x the base build's
 * speed on identical code, once the machine's load came in bursts.
 */
const OPERATIONS = {
  // A file made and removed.
  create: { ops: 2000, warmup: 300, make: () => (floor ? floorCreate : libCreate(manager())) },
  // write() of 16 chunks of 1 MiB, then the file removed; the floor writes them through a FileHandle.
  write: { ops: 12, warmup: 3, make: () => (floor ? floorWrite : libWrite(manager())) },
  // spool() of 64 KiB, below its 1 MiB threshold; the floor is the copy into memory.
  spool: { ops: 2000, warmup: 300, make: () => (floor ? floorSpool : libSpool(manager())) },
  // A small file written, handed off, claimed and consumed on the shared disk; the floor writes it,
  // renames it into a directory, takes a mkdir lock, unlinks it and removes the lock.
  handoff: { ops: 400, warmup: 100, make: () => (floor ? floorHandoff() : libHandoff(manager())) },
  // claim + consume by a manager that holds nothing else (a queue worker), tickets made before.
  claim: { ops: 800, warmup: 200, make: () => (floor ? floorClaim() : libClaim()) },
  // The sweep of 10,000 expired files in orphaned sessions; the floor is `rm -rf` of the same tree,
  // the pinned floor what the sweep promises at least: each file's size read and the file removed
  // through its directory held open.
  sweep: { ops: 1, warmup: 1, make: () => sweeps(pinnedFloor ? pinnedFloorSweep : floor ? floorSweep : libSweep) },
};

const SMALL = Buffer.alloc(1024, 0x61);
const CHUNKS = Array.from({ length: 16 }, () => Buffer.alloc(MiB, 0x5a));
const SPOOLED = Buffer.alloc(64 * 1024, 0x5a);

const libCreate = (mgr) => async () => {
  await mgr.file().remove();
};
async function floorCreate() {
  const p = fresh();
  await (await fsp.open(p, 'wx', 0o600)).close();
  await fsp.unlink(p);
}

const libWrite = (mgr) => async () => {
  await (await mgr.write(CHUNKS)).remove();
};
async function floorWrite() {
  const p = fresh();
  const handle = await fsp.open(p, 'wx', 0o600);
  for (const chunk of CHUNKS) await handle.write(chunk);
  await handle.close();
  await fsp.unlink(p);
}

const libSpool = (mgr) => async () => {
  await (await mgr.spool(SPOOLED, { maxMemory: MiB })).remove();
};
async function floorSpool() {
  if (Buffer.concat([SPOOLED]).length !== SPOOLED.length) throw new Error('a short copy');
}

const libHandoff = (mgr) => async () => {
  const ticket = await (await mgr.write(SMALL)).handoff({ ttlMs: 60_000 });
  await (await mgr.claim(ticket)).consume();
};
function floorHandoff() {
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest, { mode: 0o700 });
  return async () => {
    const p = fresh();
    await fsp.writeFile(p, SMALL, { flag: 'wx', mode: 0o600 });
    await floorCycle(p, dest);
  };
}
async function floorCycle(p, dest) {
  const target = path.join(dest, path.basename(p));
  await fsp.rename(p, target);
  await fsp.mkdir(`${target}.lock`);
  await fsp.unlink(target);
  await fsp.rmdir(`${target}.lock`);
}

async function libClaim() {
  const { ops, warmup } = OPERATIONS.claim;
  const maker = manager();
  const tickets = [];
  for (let i = 0; i < ops + warmup; i++) tickets.push(await (await maker.write(SMALL)).handoff({ ttlMs: 600_000 }));
  await maker.close();
  const worker = manager();
  return async () => {
    await (await worker.claim(tickets.pop())).consume();
  };
}
async function floorClaim() {
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest, { mode: 0o700 });
  const made = [];
  for (let i = 0; i < OPERATIONS.claim.ops + OPERATIONS.claim.warmup; i++) {
    made.push(fresh());
    fs.writeFileSync(made.at(-1), SMALL, { flag: 'wx', mode: 0o600 });
  }
  return () => floorCycle(made.pop(), dest);
}

const SWEPT = { sessions: 2, dirs: 10, files: 500 };
// Swept first, untimed, as the other operations warm up: the first sweep of a process compiles its
// code (the library's more than the floor's), which is not what a sweep costs each time it runs. A
// tree of the timed one's size: after a smaller one (500 files), V8 was still compiling the walk's
// hot functions on its background threads during the timed sweep (CPU time 1.4x the wall time), and
// the sweep measured 0.78x the pinned floor where bench/sweep-scale.mjs measures 0.91x.
const WARMUP = SWEPT;
/** The runs of a sweeper: the warm-up tree's, then the timed tree's, each planted before. */
async function sweeps(sweeper) {
  const runs = [await sweeper(plantTree('warm', WARMUP), WARMUP), await sweeper(plantTree('swept', SWEPT), SWEPT)];
  return () => runs.shift()();
}
function plantTree(name, shape) {
  const root = path.join(dir, name);
  fs.mkdirSync(root, { mode: 0o700 });
  fs.writeFileSync(path.join(root, '.tempfile-manager'), 'tempfile-manager root\nformat 1\n');
  // A live session of this build named the way this build names it, so that the planted owner
  // is a dead one of this machine in the same format.
  const probe = path.join(dir, 'probe');
  const owner = floor ? `${HOST_ID}_4194303_x` : probeOwner(probe);
  plantDeadSessions(root, { ...shape, owner, data: SMALL, index: 0 });
  return root;
}
function probeOwner(probe) {
  const mgr = new lib.TempFileManager({ root: probe, sweepOnStart: false, exitHook: false });
  mgr.file().removeSync();
  const live = fs.readdirSync(probe).find((name) => name.startsWith('session_') && !name.endsWith('.lock'));
  mgr.closeSync();
  fs.rmSync(probe, { recursive: true, force: true });
  return deadOwnerOf(live, HOST_ID);
}
async function libSweep(root, shape) {
  const mgr = new lib.TempFileManager({ root, hostId: HOST_ID, graceMs: 0, sweepOnStart: false, exitHook: false });
  const files = shape.sessions * shape.dirs * shape.files;
  return async () => {
    const report = await mgr.sweep();
    if (report.filesRemoved !== files || report.errors.length !== 0) throw new Error(`the sweep removed ${report.filesRemoved} of ${files} files, ${report.errors.length} errors`);
  };
}
async function floorSweep(root) {
  return () =>
    new Promise((resolve, reject) => {
      spawn('rm', ['-rf', root], { stdio: 'inherit' })
        .on('error', reject)
        .on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rm -rf exited with ${code}`))));
    });
}

/**
 * Each file lstat'ed (the bytes a sweep reports) and unlinked through its directory held open
 * (`/proc/self/fd/<fd>/<name>`: a directory swapped for a link mid-walk leads nowhere else), with
 * sync calls: the least a sweep that keeps both promises does, in JavaScript.
 */
async function pinnedFloorSweep(root) {
  const held = (at) => {
    const fd = fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    return { fd, base: `/proc/self/fd/${fd}` };
  };
  const removeTree = (dirAt) => {
    const dir = held(dirAt);
    for (const entry of fs.readdirSync(dir.base, { withFileTypes: true })) {
      const at = `${dir.base}/${entry.name}`;
      if (entry.isDirectory()) removeTree(at);
      else {
        bytes += fs.lstatSync(at).size;
        fs.unlinkSync(at);
      }
    }
    fs.closeSync(dir.fd);
    fs.rmdirSync(dirAt);
  };
  let bytes = 0;
  return async () => removeTree(root);
}

const spec = OPERATIONS[operation];
if (!spec) throw new Error(`unknown operation ${operation}: one of ${Object.keys(OPERATIONS).join(', ')}`);
const run = await spec.make();
for (let i = 0; i < spec.warmup; i++) await run();
globalThis.gc?.();
const cpu = process.cpuUsage();
const start = process.hrtime.bigint();
for (let i = 0; i < spec.ops; i++) await run();
const wallMicros = Number(process.hrtime.bigint() - start) / 1e3 / spec.ops;
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ cpuMicros: (used.user + used.system) / spec.ops, wallMicros }));
process.exit(0); // a manager's timers and the exit hook are not what is measured
