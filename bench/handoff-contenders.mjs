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
    "the library's exact system calls, bare: the same 25 fs calls, the same 2 through the thread pool and 23 synchronous ones, in the same order, without the library's JavaScript (reference)",
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

const OPEN_DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

/**
 * The library's cycle as `strace` shows it, call for call, with bare `fs`: what the cycle would
 * cost if the JavaScript around the calls were free. Each call is made the way the library makes
 * it (promise, callback through the thread pool, or synchronous).
 */
function mirrorContender(dir) {
  const { target: handoff, create } = bareDirs(dir, 'handoff');
  return {
    phases: ['handoff', 'claim', 'consume'],
    create,
    async cycle(p, mark) {
      const id = path.basename(p);
      const staging = path.join(handoff, `.tmp-${id}`);
      const entry = path.join(handoff, `${id}_e`);
      mark('handoff');
      // mkdir staging; open it pinned (open, lstat via /proc, fstat); rename the file in through
      // /proc/self/fd; close; open the handoff directory pinned and check it (open, lstat via
      // /proc, fstat, lstat); rename staging to the entry through it; close. All synchronous.
      fs.mkdirSync(staging, { mode: 0o700 });
      const stagingFd = fs.openSync(staging, OPEN_DIR);
      const pinnedStaging = `/proc/self/fd/${stagingFd}`;
      fs.lstatSync(`${pinnedStaging}/.`);
      fs.fstatSync(stagingFd);
      fs.renameSync(p, `${pinnedStaging}/data`);
      fs.closeSync(stagingFd);
      const publishFd = fs.openSync(handoff, OPEN_DIR);
      const pinnedHandoff = `/proc/self/fd/${publishFd}`;
      fs.lstatSync(`${pinnedHandoff}/.`);
      fs.fstatSync(publishFd);
      fs.lstatSync(`${pinnedHandoff}/.`);
      fs.renameSync(staging, `${pinnedHandoff}/${path.basename(entry)}`);
      fs.closeSync(publishFd);
      mark('claim');
      // open the handoff directory pinned and check it; open the entry through it, pinned; close
      // the handoff directory; rename the data to the held name; lstat it. All synchronous.
      const handoffFd = fs.openSync(handoff, OPEN_DIR);
      const handoffBase = `/proc/self/fd/${handoffFd}`;
      fs.lstatSync(`${handoffBase}/.`);
      fs.fstatSync(handoffFd);
      fs.lstatSync(`${handoffBase}/.`);
      const fd = fs.openSync(`${handoffBase}/${path.basename(entry)}`, OPEN_DIR);
      const base = `/proc/self/fd/${fd}`;
      fs.lstatSync(`${base}/.`);
      fs.fstatSync(fd);
      fs.closeSync(handoffFd);
      fs.renameSync(`${base}/data`, `${base}/held`);
      fs.lstatSync(`${base}/held`);
      mark('consume');
      // unlink (thread pool); close; rmdir the entry (thread pool)
      await fsp.unlink(`${base}/held`);
      fs.closeSync(fd);
      await fsp.rmdir(entry);
      mark('end');
    },
    async check() {
      if (fs.readdirSync(handoff).length !== 0) throw new Error('the mirror left entries behind');
    },
    close: async () => {},
  };
}
