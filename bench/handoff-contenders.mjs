// The contenders of the handoff bench (bench/handoff.mjs), shared with its strace/profile child
// (bench/handoff-worker.mjs). Each contender makes one small file per cycle, untimed (`create`),
// then does one timed `cycle(item, mark)`: `mark(phase)` is called at the start of every phase
// and with 'end' at the end, so that the caller can time phases or put markers in a trace.
import fs from 'node:fs';
import path from 'node:path';
import { TempFileManager } from '../dist/index.js';

const fsp = fs.promises;
export const SMALL_BYTES = 1024;
const TTL_MS = 10 * 60 * 1000;

/** The bytes of every small file: fresh per contender, never shared with a pending write. */
const small = () => Buffer.alloc(SMALL_BYTES, 0x61);

export const NAMES = {
  lib: '`file.handoff({ ttlMs })` + `mgr.claim(ticket)` + `claimed.consume()`',
  floor: 'floor: `fs.promises` rename into a dir + mkdir lock + unlink + rmdir lock',
  'floor-sync': 'floor, sync: `renameSync` + `mkdirSync` + `unlinkSync` + `rmdirSync` (reference)',
  mirror:
    "the library's system calls, bare: the same 13 fs calls but its 2 checks of the root's and session's paths, the same 1 through the thread pool (none on tmpfs) and the others synchronous, in the same order, without the library's JavaScript (reference)",
  layout:
    "the library's on-disk steps, bare `fs.promises`: mkdir staging, rename in, rename staging → entry, rename data → held, unlink, rmdir entry (reference)",
};

export const SHORT = { lib: 'library', floor: 'floor', 'floor-sync': 'floor, sync', mirror: 'bare mirror', layout: 'bare layout' };

/** Makes a contender's state under `dir` (a fresh directory). */
export async function makeContender(id, dir) {
  switch (id) {
    case 'lib':
      return libContender(dir);
    case 'floor':
      return floorContender(dir, false);
    case 'floor-sync':
      return floorContender(dir, true);
    case 'layout':
      return layoutContender(dir);
    case 'mirror':
      return mirrorContender(dir);
    default:
      throw new Error(`unknown handoff contender ${id}`);
  }
}

function libContender(dir) {
  const mgr = new TempFileManager({ root: path.join(dir, 'root'), sweepOnStart: false, exitHook: false });
  const bytes = small();
  return {
    phases: ['handoff', 'claim', 'consume'],
    // Untimed: the file a request would have written; write() knows its size, so handoff()
    // needs no lstat for it.
    create: () => mgr.write(bytes),
    async cycle(file, mark) {
      mark('handoff');
      const ticket = await file.handoff({ ttlMs: TTL_MS });
      mark('claim');
      const claimed = await mgr.claim(ticket);
      mark('consume');
      await claimed.consume();
      mark('end');
    },
    async check() {
      const left = fs.readdirSync(path.join(dir, 'root', 'handoff'));
      if (left.length !== 0) throw new Error(`the library left ${left.length} handoff entries: ${left.slice(0, 3)}`);
    },
    close: () => mgr.close(),
  };
}

/**
 * The directories of a bare contender: `src`, where `create()` writes each small file (untimed),
 * and `target`, named `name`, where its cycles move them.
 */
function bareDirs(dir, name) {
  const src = path.join(dir, 'src');
  const target = path.join(dir, name);
  fs.mkdirSync(src, { mode: 0o700 });
  fs.mkdirSync(target, { mode: 0o700 });
  const bytes = small();
  let n = 0;
  const create = async () => {
    const p = path.join(src, `f${n++}`);
    await fsp.writeFile(p, bytes, { flag: 'wx', mode: 0o600 });
    return p;
  };
  return { target, create };
}

function floorContender(dir, sync) {
  const { target: dest, create } = bareDirs(dir, 'dest');
  return {
    phases: ['cycle'],
    create,
    cycle: sync
      ? async (p, mark) => {
          mark('cycle');
          const target = path.join(dest, path.basename(p));
          const lock = `${target}.lock`;
          fs.renameSync(p, target);
          fs.mkdirSync(lock);
          fs.unlinkSync(target);
          fs.rmdirSync(lock);
          mark('end');
        }
      : async (p, mark) => {
          mark('cycle');
          const target = path.join(dest, path.basename(p));
          const lock = `${target}.lock`;
          await fsp.rename(p, target);
          await fsp.mkdir(lock);
          await fsp.unlink(target);
          await fsp.rmdir(lock);
          mark('end');
        },
    async check() {
      if (fs.readdirSync(dest).length !== 0) throw new Error('the floor left files behind');
    },
    close: async () => {},
  };
}

function layoutContender(dir) {
  const { target: handoff, create } = bareDirs(dir, 'handoff');
  return {
    phases: ['handoff', 'claim', 'consume'],
    create,
    async cycle(p, mark) {
      const id = path.basename(p);
      const staging = path.join(handoff, `.tmp-${id}`);
      const entry = path.join(handoff, `${id}_e`);
      mark('handoff');
      await fsp.mkdir(staging, { mode: 0o700 });
      await fsp.rename(p, path.join(staging, 'data'));
      await fsp.rename(staging, entry);
      mark('claim');
      await fsp.rename(path.join(entry, 'data'), path.join(entry, 'held'));
      mark('consume');
      await fsp.unlink(path.join(entry, 'held'));
      await fsp.rmdir(entry);
      mark('end');
    },
    async check() {
      if (fs.readdirSync(handoff).length !== 0) throw new Error('the layout reference left entries behind');
    },
    close: async () => {},
  };
}

/** statfs magic numbers of tmpfs and ramfs. */
const MEMORY_FILE_SYSTEMS = new Set([0x01021994, 0x858458f6]);
const OPEN_DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

/**
 * The library's cycle as `strace` shows it, call for call, with bare `fs`: what the cycle would
 * cost if the JavaScript around the calls were free. Each call is made the way the library makes
 * it (promise, callback through the thread pool, or synchronous).
 */
function mirrorContender(dir) {
  const { target: handoff, create } = bareDirs(dir, 'handoff');
  // The handoff directory, held open for the contender's life as a manager holds it.
  const handoffFd = fs.openSync(handoff, OPEN_DIR);
  const handoffBase = `/proc/self/fd/${handoffFd}`;
  // As the library: the entry's rmdir inline where the file system is held in memory.
  const inMemory = MEMORY_FILE_SYSTEMS.has(fs.statfsSync(handoff).type);
  return {
    phases: ['handoff', 'claim', 'consume'],
    create,
    async cycle(p, mark) {
      const id = path.basename(p);
      const staging = path.join(path.dirname(p), `.tmp-${id}`);
      const entry = `${id}_e`;
      mark('handoff');
      // mkdir staging; open it pinned; rename the file in through /proc/self/fd; lstat it; close;
      // lstat the handoff directory (the held one must still be at its name); rename staging to
      // the entry through the held descriptor. All synchronous.
      fs.mkdirSync(staging, { mode: 0o700 });
      const stagingFd = fs.openSync(staging, OPEN_DIR);
      const pinnedStaging = `/proc/self/fd/${stagingFd}`;
      fs.renameSync(p, `${pinnedStaging}/data`);
      fs.lstatSync(`${pinnedStaging}/data`);
      fs.closeSync(stagingFd);
      fs.lstatSync(handoff);
      fs.renameSync(staging, `${handoffBase}/${entry}`);
      mark('claim');
      // Open the entry through the handoff directory, pinned (looked at already in this run of
      // JavaScript); rename the data to the held name; lstat it. All synchronous.
      const fd = fs.openSync(`${handoffBase}/${entry}`, OPEN_DIR);
      const base = `/proc/self/fd/${fd}`;
      fs.renameSync(`${base}/data`, `${base}/held`);
      fs.lstatSync(`${base}/held`);
      mark('consume');
      // Unlink the small file inline (its size known from the claim); close; rmdir the entry
      // (thread pool; inline on tmpfs)
      fs.unlinkSync(`${base}/held`);
      fs.closeSync(fd);
      if (inMemory) fs.rmdirSync(`${handoffBase}/${entry}`);
      else await fsp.rmdir(`${handoffBase}/${entry}`);
      mark('end');
    },
    async check() {
      if (fs.readdirSync(handoff).length !== 0) throw new Error('the mirror left entries behind');
    },
    close: async () => fs.closeSync(handoffFd),
  };
}
