import { monotonicMs } from '../base/clock.js';
import type { FileHandle } from 'node:fs/promises';
import { fs } from './fs.js';
import { DirListing, type ListedBatch } from './dir-stream.js';
import { mountIdAt, mountIdOf, parentMountIdOf } from './mounts.js';
import { procFd, procFdPath } from './proc.js';
import { HOST_PLATFORM } from '../base/platform.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

// The walk (walk.ts) is written once, as a generator that yields the system calls it needs as
// steps; runSync() carries them out with sync calls (for `using` and the exit hook), runAsync()
// with promises, runInline() with sync calls in turns of a millisecond (a local disk). Either way the walk is a loop over an explicit stack: the JS stack stays flat at
// any depth.

const OPEN_DIR = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0);
/** Linux's O_PATH: a descriptor that names a directory without reading it (works at mode 0000). */
const O_PATH = HOST_PLATFORM === 'linux' ? 0o10000000 : 0;
const OPEN_PATH = O_PATH | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0);

/** What the walk needs to know of a directory. @internal */
export interface DirStat {
  readonly dev: number;
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  /** Its link count: 2 + its subdirectories on Linux's file systems (1 where not counted, as on btrfs). */
  readonly nlink: number;
}

/** A directory opened with O_NOFOLLOW. @internal */
export interface OpenedDir {
  readonly fd: number;
  readonly stat: DirStat;
  readonly handle?: FileHandle;
}

/** The outcome of one file of a `visitFiles` step. @internal */
export type FileOutcome = { readonly size: number } | { readonly error: unknown };

/** The steps the walk yields, each with the value it gets back. */
type Step =
  | { op: 'open'; path: string }
  | { op: 'close'; dir: OpenedDir }
  | { op: 'fchmod'; dir: OpenedDir; mode: number }
  | { op: 'chmodUnreadable'; path: string; mask: number }
  | { op: 'lstat'; path: string }
  | { op: 'openList'; path: string; dev: number }
  | { op: 'readList'; list: DirListing; max: number }
  | { op: 'closeList'; list: DirListing }
  | { op: 'visitFiles'; base: string; names: readonly string[]; sizes: boolean; remove: boolean }
  | { op: 'rmdir'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'sleep'; ms: number }
  | { op: 'mountId'; dir: OpenedDir }
  | { op: 'parentMountId'; dir: OpenedDir; access: string }
  | { op: 'mountIdAt'; path: string };

/** What each step gives back. */
interface Results {
  open: OpenedDir;
  close: void;
  fchmod: void;
  chmodUnreadable: void;
  lstat: DirStat;
  openList: DirListing;
  readList: ListedBatch;
  closeList: void;
  visitFiles: FileOutcome[];
  rmdir: void;
  rename: void;
  sleep: void;
  mountId: number | undefined;
  parentMountId: number | undefined;
  mountIdAt: number | undefined;
}
type Result = Results[keyof Results];

/**
 * A walk: a generator of steps. Each `yield step` evaluates to that step's result, which a
 * generator cannot type per step: the walk states it where it takes it (`const dir: OpenedDir =
 * yield { op: 'open', ... }`). Internal only.
 * @internal
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Steps<T> = Generator<Step, T, any>;

const euid = (): number => (typeof process.geteuid === 'function' ? process.geteuid() : -1);

function statOf(s: DirStat): DirStat {
  return { dev: s.dev, ino: s.ino, mode: s.mode, uid: s.uid, nlink: s.nlink };
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function childPath(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

/** Carries out a walk with sync calls. @internal */
export function runSync(steps: Steps<void>): void {
  let next = steps.next();
  while (!next.done) {
    let value: Result;
    try {
      value = syncStep(next.value);
    } catch (err) {
      next = steps.throw(err);
      continue;
    }
    next = steps.next(value);
  }
}

/** Carries out a walk with promises. @internal */
export async function runAsync(steps: Steps<void>): Promise<void> {
  let next = steps.next();
  while (!next.done) {
    let value: Result;
    try {
      value = await asyncStep(next.value);
    } catch (err) {
      next = steps.throw(err);
      continue;
    }
    next = steps.next(value);
  }
}

/** How long runInline() carries out steps before the event loop gets its turn. */
const TURN_MS = 1;

/**
 * Carries out a walk with sync calls, giving the event loop its turn every {@link TURN_MS}: for a
 * tree on a local disk, where a call takes microseconds and a thread-pool hop costs more than the
 * call (a sweep of 10,000 files twice as fast as with promises). A retry's wait is a timer.
 * @internal
 */
export async function runInline(steps: Steps<void>): Promise<void> {
  let turnStarted = monotonicMs();
  let next = steps.next();
  while (!next.done) {
    const step = next.value;
    let value: Result;
    try {
      value = step.op === 'sleep' ? await new Promise<void>((resolve) => setTimeout(resolve, step.ms)) : syncStep(step);
    } catch (err) {
      next = steps.throw(err);
      continue;
    }
    next = steps.next(value);
    if (monotonicMs() - turnStarted < TURN_MS) continue;
    await new Promise((resolve) => setImmediate(resolve));
    turnStarted = monotonicMs();
  }
}

function syncStep(step: Step): Result {
  switch (step.op) {
    case 'open': {
      const fd = fs.openSync(step.path, OPEN_DIR);
      try {
        return { fd, stat: statOf(fs.fstatSync(fd)) };
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
    }
    case 'close':
      try {
        fs.closeSync(step.dir.fd);
      } catch {
        // closing was all that was left to do
      }
      return;
    case 'fchmod':
      fs.fchmodSync(step.dir.fd, step.mode);
      return;
    case 'chmodUnreadable':
      return chmodUnreadableSync(step.path, step.mask);
    case 'lstat':
      return statOf(fs.lstatSync(step.path));
    case 'openList':
      return DirListing.openSync(step.path, step.dev);
    case 'readList':
      return step.list.readSync(step.max);
    case 'closeList':
      step.list.closeSync();
      return;
    case 'visitFiles':
      return step.names.map((name) => visitFileSync(childPath(step.base, name), step.sizes, step.remove));
    case 'rmdir':
      fs.rmdirSync(step.path);
      return;
    case 'rename':
      fs.renameSync(step.from, step.to);
      return;
    case 'sleep':
      sleepSync(step.ms);
      return;
    default:
      return mountStep(step);
  }
}

async function asyncStep(step: Step): Promise<Result> {
  switch (step.op) {
    case 'open': {
      const handle = await fs.promises.open(step.path, OPEN_DIR);
      try {
        return { fd: handle.fd, stat: statOf(await handle.stat()), handle };
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
    case 'close':
      await step.dir.handle?.close().catch(() => {});
      return;
    case 'fchmod':
      if (step.dir.handle) await step.dir.handle.chmod(step.mode);
      return;
    case 'chmodUnreadable':
      return chmodUnreadableSync(step.path, step.mask);
    case 'lstat':
      return statOf(await fs.promises.lstat(step.path));
    case 'openList':
      return DirListing.open(step.path, step.dev);
    case 'readList':
      return step.list.read(step.max);
    case 'closeList':
      await step.list.close();
      return;
    case 'visitFiles':
      return Promise.all(step.names.map((name) => visitFileAsync(childPath(step.base, name), step.sizes, step.remove)));
    case 'rmdir':
      await fs.promises.rmdir(step.path);
      return;
    case 'rename':
      await fs.promises.rename(step.from, step.to);
      return;
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, step.ms));
      return;
    default:
      return mountStep(step);
  }
}

/**
 * Mount id steps: they read /proc/self/fdinfo (a few bytes the kernel makes up, no I/O) and open
 * nothing of the tree but `..` of a directory held, O_PATH: sync in both runners.
 */
function mountStep(step: Extract<Step, { op: 'mountId' | 'parentMountId' | 'mountIdAt' }>): Result {
  switch (step.op) {
    case 'mountId':
      return mountIdOf(step.dir.fd);
    case 'parentMountId':
      return parentMountIdOf(step.dir.fd, step.access);
    case 'mountIdAt':
      return mountIdAt(step.path);
  }
}

function visitFileSync(file: string, sizes: boolean, remove: boolean): FileOutcome {
  try {
    const size = sizes ? fs.lstatSync(file).size : 0;
    if (remove) fs.unlinkSync(file);
    return { size };
  } catch (error) {
    return { error };
  }
}

async function visitFileAsync(file: string, sizes: boolean, remove: boolean): Promise<FileOutcome> {
  try {
    const size = sizes ? (await fs.promises.lstat(file)).size : 0;
    if (remove) await fs.promises.unlink(file);
    return { size };
  } catch (error) {
    return { error };
  }
}

/**
 * Gives the owner `mask` on a directory of the owner's that cannot be opened for reading (mode
 * 0000), never through a link: with /proc, the directory is opened with O_PATH|O_NOFOLLOW (no
 * read permission needed) and changed through `/proc/self/fd/<fd>`, which names exactly that
 * inode. Without /proc, the path is checked with lstat first and changed by name: a symlink
 * swapped in between could redirect the change (docs/security.md). Only an unprivileged owner
 * ever gets here: root is not refused by permission bits.
 */
function chmodUnreadableSync(dir: string, mask: number): void {
  if (procFd() && O_PATH) {
    const fd = fs.openSync(dir, OPEN_PATH);
    try {
      const stat = fs.fstatSync(fd);
      if (stat.isDirectory() && stat.uid === euid()) fs.chmodSync(procFdPath(fd), (stat.mode & 0o7777) | mask);
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  const stat = fs.lstatSync(dir);
  if (stat.isDirectory() && stat.uid === euid()) fs.chmodSync(dir, (stat.mode & 0o7777) | mask);
}
