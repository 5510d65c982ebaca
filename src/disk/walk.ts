import { isGone, systemErrorCode } from '../base/errors.js';
import { holdsHappen, isRetried, newSetAsideName, retryDelays } from './holds.js';
import { procFd, procFdPath } from './proc.js';
import { hoistedName } from '../base/layout.js';
import {
  runAsync,
  runInline,
  runSync,
  type DirStat,
  type OpenedDir,
  type Steps,
} from './walk-steps.js';
import type { DirListing, ListedBatch } from './dir-stream.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');
const path = builtin('node:path');

/** A failure met while walking or removing, with the path it was about. */
export interface PathError {
  /** The path the failure was about. */
  readonly path: string;
  /** The system error code (`EACCES`, `EIO`, ...). */
  readonly code: string;
  /** The system error's message. */
  readonly message: string;
}

/** Why a path was left in place on purpose. */
export type LeftReason =
  /** Another file system is mounted there: removal never crosses a device boundary. */
  'mount-point';

/** A path that a removal left in place on purpose, with everything under it. */
export interface LeftPath {
  /** The path that was left. */
  readonly path: string;
  /** Why it was left. */
  readonly reason: LeftReason;
}

/** Tallies of a walk. @internal */
export interface WalkTally {
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: PathError[];
  readonly left: LeftPath[];
  /** Paths still held by another handle (Windows) once the retries were spent, renamed aside (`setAsideIn`). */
  setAside?: string[];
}

/** What to do at each entry of a walk. @internal */
export interface WalkOptions {
  /** Remove what is walked (files, links, then directories bottom-up); else only count. */
  readonly remove: boolean;
  /** Count the bytes of files (one `lstat` each); a removal that reports no bytes skips it. @default true */
  readonly bytes?: boolean;
  /** Called every {@link BATCH} entries with the running tally. */
  readonly onBatch?: (tally: WalkTally) => void;
  /** The device of the directory that holds `root`, when the caller knows it; else it is read. */
  readonly parentDev?: number;
  /**
   * The path for system calls on `root`, when it differs: a path through a pinned directory
   * (`/proc/self/fd/<fd>/<name>`). Reports still name `root`.
   */
  readonly access?: string;
  /**
   * Names in the walk's root directory to leave in place, with the root itself: files another
   * party may own, whose absence from an earlier listing proves nothing.
   */
  readonly spare?: (name: string) => boolean;
  /**
   * Empty the walk's root but leave the directory itself: the caller removes it through its
   * parent (`access` then names it through its own descriptor, `/proc/self/fd/<fd>/.`).
   */
  readonly keepTop?: boolean;
  /**
   * Where a file or directory still held by another handle once the retries are spent (Windows
   * only) is renamed to, as `.removing_<random>`, so that its name is free: a directory the
   * caller owns (the session), reached as system calls reach it. Without it, what is held stays and is reported.
   */
  readonly setAsideIn?: string;
  /** The walk runs with sync calls: its retries then wait less (holds.ts). */
  readonly sync?: boolean;
  /** The walk's calls are made inline, in turns of a millisecond (runInline(): a tree on a local disk). */
  readonly inline?: boolean;
}

/** How many entries are read from a directory at once, and removed at once (libuv runs 4 calls at a time). */
const BATCH = 64;
/** Subdirectories a directory queues before its walk goes down into them, its listing still open. */
const MAX_PENDING = 256;
/**
 * How many directory descriptors a walk holds at most, one per level. Deeper than that, the
 * shallowest levels are closed and, on the way back up, reopened through `..` of the level below
 * and checked to be the same directory (device and inode): a 100,000-level tree needs no more, and no level-deep tree trips a low `ulimit -n`.
 */
const MAX_PINNED = 128;
const OWNER_RWX = 0o700;

/** A failure about `file`, as reports list it. @internal */
export function pathError(file: string, err: unknown): PathError {
  return { path: file, code: systemErrorCode(err) ?? 'EUNKNOWN', message: err instanceof Error ? err.message : String(err) };
}

/** An empty tally. @internal */
export function emptyTally(): WalkTally {
  return { files: 0, dirs: 0, bytes: 0, errors: [], left: [] };
}

/**
 * Walks (and, with `remove`, deletes) the tree at `root` without ever following a symlink, never
 * crossing into a mount point, whenever it was made (one is left in place and listed in `left`), and
 * restoring the owner's permissions on directories that refuse removal. Iterative (an explicit
 * stack: any depth), reading directories as streams (memory does not grow with their size),
 * asynchronous with a bounded batch of calls in flight, so the event loop never stalls. Entries
 * vanishing under it (another sweeper) are not counted.
 * @internal
 */
export async function walkTree(root: string, options: WalkOptions, tally: WalkTally = emptyTally()): Promise<WalkTally> {
  await (options.inline ? runInline : runAsync)(walk(root, options, tally));
  return tally;
}

/** Synchronous {@link walkTree}, for `using` and the exit hook, which cannot wait. @internal */
export function walkTreeSync(root: string, options: WalkOptions, tally: WalkTally = emptyTally()): WalkTally {
  runSync(walk(root, { ...options, sync: true }, tally));
  return tally;
}

/** Synchronous removal of the tree at `root`; bytes are not counted. @internal */
export function removeTreeSyncWalk(root: string, tally: WalkTally = emptyTally()): WalkTally {
  return walkTreeSync(root, { remove: true, bytes: false }, tally);
}

/** A directory on the walk's stack. */
interface Frame {
  /** The directory it is in (undefined for the walk's root): report paths are built from it, only when needed. */
  readonly up: Frame | undefined;
  /** Its name in `up`, or for the root its whole path. */
  readonly name: string;
  /** How system calls reach it: `/proc/self/fd/<fd>` while it is pinned, else its path. */
  base: string;
  /** Its open descriptor, or undefined once released (deep trees) or closed. */
  dir: OpenedDir | undefined;
  readonly stat: DirStat;
  /** Its mount id (undefined without /proc). */
  mountId: number | undefined;
  list: DirListing | undefined;
  listed: boolean;
  readonly pending: string[];
  /** Something under it stays (a mount point, an error): it cannot be removed. */
  keeps: boolean;
  /** Walks of it done so far: a concurrent creator (ENOTEMPTY) earns it another one. */
  passes: number;
  /** Failures of holds under it (Windows) once the retries were spent: it is set aside, or they are reported. */
  held?: PathError[];
}

class Walk {
  readonly stack: Frame[] = [];
  pinned = 0;
  /** Frames below this index had their descriptor released. */
  released = 0;
  aborted = false;
  /**
   * Whether `/proc/self/fd/<fd>` names the walk's own descriptors: checked once. Mount ids are compared only then.
   */
  proc: boolean | undefined = procFd() ? undefined : false;
  /** The waits before each retry, and what is left of their sum for the whole walk (Windows: one bound for the walk). */
  readonly delays: readonly number[];
  private waitLeftMs: number;

  constructor(
    readonly options: WalkOptions,
    readonly tally: WalkTally,
  ) {
    this.delays = retryDelays(options.sync === true);
    this.waitLeftMs = holdsHappen() ? this.delays.reduce((a, b) => a + b, 0) : Infinity;
  }

  /** Whether a call that failed `attempt` times before may be tried again. */
  mayRetry(attempt: number): boolean {
    return attempt < this.delays.length && this.waitLeftMs > 0;
  }

  /** The wait before retry number `attempt`, taken from the walk's bound. */
  takeDelay(attempt: number): number {
    const ms = Math.min(this.delays[Math.min(attempt, this.delays.length - 1)] ?? 0, this.waitLeftMs);
    this.waitLeftMs -= ms;
    return ms;
  }

  /** Where what stays held is set aside, on a platform where holds happen; else undefined. */
  get setAsideIn(): string | undefined {
    return holdsHappen() ? this.options.setAsideIn : undefined;
  }

  get removing(): boolean {
    return this.options.remove;
  }

  error(file: string, err: unknown): void {
    if (!isGone(systemErrorCode(err))) this.tally.errors.push(pathError(file, err));
  }
}

const HELD_DIRECTORY = /^\/proc\/(?:self|\d+)\/fd\/\d+$/;

function* walk(root: string, options: WalkOptions, tally: WalkTally): Steps<void> {
  const w = new Walk(options, tally);
  const access = options.access ?? root;
  const parentDev = options.parentDev ?? (yield* parentDevice(root, access, w));
  const top = yield* openDir(w, access, root, parentDev, undefined);
  if (top === undefined) return;
  try {
    yield* run(w, top, access);
  } finally {
    for (const frame of w.stack) yield* closeFrame(w, frame);
  }
}

// The parent as system calls reach it. `/proc/<pid>/fd/<fd>` is a held directory itself: its
// parent is `<it>/..`, resolved by the kernel from the directory. Below one, `<dir>/.` names
// the directory the descriptor leads to, where `<dir>` alone would lstat the link.
function* parentDevice(root: string, access: string, w: Walk): Steps<number | undefined> {
  const parent = HELD_DIRECTORY.test(access) ? `${access}/..` : access.startsWith('/proc/') ? `${path.dirname(access)}/.` : path.dirname(access);
  try {
    return (yield { op: 'lstat', path: parent }).dev;
  } catch (err) {
    w.error(path.dirname(root), err);
    return undefined;
  }
}

function* run(w: Walk, top: Frame, root: string): Steps<void> {
  w.stack.push(top);
  while (w.stack.length > 0 && !w.aborted) {
    const frame = w.stack[w.stack.length - 1] as Frame;
    if (!frame.listed && frame.pending.length < MAX_PENDING) {
      yield* readSome(w, frame);
      continue;
    }
    const name = frame.pending.pop();
    if (name !== undefined) {
      yield* descend(w, frame, name);
      continue;
    }
    w.stack.pop();
    const parent = w.stack[w.stack.length - 1];
    const repinned = !parent || (yield* repin(w, parent, frame));
    yield* closeFrame(w, frame); // off the stack: the final close-all no longer sees it
    if (!repinned) return;
    yield* finishDir(w, frame, parent, root);
  }
}

/** Reads the next batch of `frame`'s entries: files are removed (or counted) at once, directories queued. */
function* readSome(w: Walk, frame: Frame): Steps<void> {
  let batch: ListedBatch;
  try {
    const list: DirListing = frame.list ?? (yield { op: 'openList', path: frame.base, dev: frame.stat.dev });
    frame.list = list;
    batch = yield { op: 'readList', list, max: BATCH };
  } catch (err) {
    w.error(logicalOf(frame), err);
    if (!isGone(systemErrorCode(err))) frame.keeps = true;
    batch = { entries: [], done: true };
  }
  if (batch.done) {
    frame.listed = true;
    if (frame.list) yield { op: 'closeList', list: frame.list };
    frame.list = undefined;
  }
  const files: string[] = [];
  for (const entry of batch.entries) {
    if (frame.up === undefined && w.options.spare?.(entry.name)) frame.keeps = true;
    else (entry.isDir ? frame.pending : files).push(entry.name);
  }
  if (files.length > 0) yield* visitFiles(w, frame, files);
  if (batch.entries.length > 0) w.options.onBatch?.(w.tally);
}

/** Removes (or counts) `names` inside `frame`, retrying what a retry may cure. */
function* visitFiles(w: Walk, frame: Frame, names: string[]): Steps<void> {
  const sizes = w.options.bytes !== false || !w.removing;
  let todo = names;
  for (let attempt = 0; todo.length > 0; attempt++) {
    const results = yield { op: 'visitFiles', base: frame.base, names: todo, sizes, remove: w.removing };
    const again: string[] = [];
    const retry = w.mayRetry(attempt);
    let fixPermissions = false;
    for (let i = 0; i < todo.length; i++) {
      const name = todo[i] as string;
      const result = results[i] as { size: number } | { error: unknown };
      if ('size' in result) {
        w.tally.files += 1;
        w.tally.bytes += result.size;
        continue;
      }
      const code = systemErrorCode(result.error);
      if (code === 'EBUSY' && (yield* isMountPoint(frame, name))) {
        leave(w, frame, name);
      } else if (retry && isRetried(code)) {
        fixPermissions ||= code === 'EPERM';
        again.push(name);
      } else if (w.setAsideIn !== undefined && isRetried(code)) {
        yield* setAsideOrKeep(w, frame, name, result.error);
      } else if (!isGone(code)) {
        w.error(path.join(logicalOf(frame), name), result.error);
        frame.keeps = true;
      }
    }
    if (again.length > 0) yield* beforeRetry(w, frame, attempt, fixPermissions);
    todo = again;
  }
}

function* beforeRetry(w: Walk, frame: Frame, attempt: number, fixPermissions: boolean): Steps<void> {
  if (fixPermissions && frame.dir) yield* restoreOwnerAccess(frame.dir, frame.stat, true);
  yield { op: 'sleep', ms: w.takeDelay(attempt) };
}

/**
 * `name` in `frame` is still held by another handle once the retries are spent (Windows): it is
 * renamed aside, which frees its name; where that fails too, its directory is marked held, and
 * set aside in its turn (or the failure reported) once walked.
 */
function* setAsideOrKeep(w: Walk, frame: Frame, name: string, error: unknown): Steps<void> {
  if (yield* setAside(w, childPath(frame.base, name), path.join(logicalOf(frame), name))) return;
  (frame.held ??= []).push(pathError(path.join(logicalOf(frame), name), error));
  frame.keeps = true;
}

/** Renames `access` into the walk's `setAsideIn`; true when it went (or was gone already). */
function* setAside(w: Walk, access: string, logical: string): Steps<boolean> {
  const into = w.setAsideIn;
  if (into === undefined) return false;
  try {
    yield { op: 'rename', from: access, to: childPath(into, newSetAsideName()) };
  } catch (err) {
    return isGone(systemErrorCode(err));
  }
  (w.tally.setAside ??= []).push(logical);
  return true;
}

/** Whether `name` in `frame`, whose unlink failed with EBUSY, is a mount point: another device, or (a bind mount of a file) another mount. */
function* isMountPoint(frame: Frame, name: string): Steps<boolean> {
  const at = childPath(frame.base, name);
  try {
    if ((yield { op: 'lstat', path: at }).dev !== frame.stat.dev) return true;
    if (frame.mountId === undefined) return false;
    const mountId: number | undefined = yield { op: 'mountIdAt', path: at };
    return mountId !== undefined && mountId !== frame.mountId;
  } catch {
    return false;
  }
}

function leave(w: Walk, frame: Frame, name: string): void {
  w.tally.left.push({ path: path.join(logicalOf(frame), name), reason: 'mount-point' });
  frame.keeps = true;
}

/** Goes down into `name`, a directory of `frame`; what it turns out to be instead is handled here. */
function* descend(w: Walk, frame: Frame, name: string): Steps<void> {
  const access = childPath(frame.base, name);
  if (!w.proc && access.length > PORTABLE_PATH_LIMIT && w.stack.length > 1 && (yield* hoist(w, access))) return;
  const child = yield* openDir(w, access, name, frame.stat.dev, frame);
  if (child === undefined) return;
  w.stack.push(child);
  if (w.pinned > MAX_PINNED) yield* releaseShallowest(w);
}

/**
 * Without /proc, directories are reached by path, and a deep tree's paths outgrow PATH_MAX: a
 * directory whose path gets this long is first moved up into the walk's root (a rename inside
 * the tree being removed), and walked from there.
 */
const PORTABLE_PATH_LIMIT = 768;

function* hoist(w: Walk, access: string): Steps<boolean> {
  const top = w.stack[0] as Frame;
  const name = hoistedName(builtin('node:crypto').randomBytes(8).toString('hex'));
  try {
    yield { op: 'rename', from: access, to: childPath(top.base, name) };
  } catch {
    return false; // walked where it is, as far as its paths reach
  }
  top.pending.push(name);
  return true;
}

/**
 * Opens the directory at `access` with O_NOFOLLOW, pinned. Undefined when there is nothing to walk
 * there: it is gone, a mount point (left), unreadable (an error), or not a directory (a file or
 * a link planted since it was listed: removed as such).
 */
function* openDir(w: Walk, access: string, name: string, parentDev: number | undefined, parent: Frame | undefined): Steps<Frame | undefined> {
  const logical = () => (parent ? path.join(logicalOf(parent), name) : name);
  let dir: OpenedDir;
  try {
    dir = yield* openWithAccess(w, access);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      if (parent) yield* visitFiles(w, parent, [name]);
      else yield* visitRootFile(w, access);
    } else {
      w.error(logical(), err);
      if (parent && !isGone(code)) parent.keeps = true;
    }
    return undefined;
  }
  w.proc ??= yield* procNamesOwnDescriptors(dir);
  let mountId: number | undefined;
  let crossed: boolean;
  try {
    // Its mount id against its parent's, for every directory opened: st_dev misses a bind mount
    // of the same file system, and a mount made since the walk started is met only here.
    mountId = w.proc ? yield { op: 'mountId', dir } : undefined;
    const above: number | undefined = !w.proc ? undefined : parent ? parent.mountId : yield { op: 'parentMountId', dir, access };
    crossed = mountId !== undefined && above !== undefined && mountId !== above;
  } catch (err) {
    yield { op: 'close', dir };
    w.error(logical(), err);
    if (parent) parent.keeps = true;
    return undefined;
  }
  if ((parentDev !== undefined && dir.stat.dev !== parentDev) || crossed) {
    yield { op: 'close', dir };
    w.tally.left.push({ path: logical(), reason: 'mount-point' });
    if (parent) parent.keeps = true;
    return undefined;
  }
  if (w.removing) yield* restoreOwnerAccess(dir, dir.stat, false);
  w.pinned += 1;
  const base = w.proc ? procFdPath(dir.fd) : access;
  return { up: parent, name, base, dir, stat: dir.stat, mountId, list: undefined, listed: false, pending: [], keeps: false, passes: 1 };
}

function* procNamesOwnDescriptors(dir: OpenedDir): Steps<boolean> {
  try {
    const viaProc: DirStat = yield { op: 'lstat', path: `${procFdPath(dir.fd)}/.` };
    return viaProc.dev === dir.stat.dev && viaProc.ino === dir.stat.ino;
  } catch {
    return false;
  }
}

/** Opens a directory; one the owner cannot read (mode 0000) is first given back u+rwx, when removing. */
function* openWithAccess(w: Walk, access: string): Steps<OpenedDir> {
  try {
    return yield { op: 'open', path: access };
  } catch (err) {
    if (!w.removing || systemErrorCode(err) !== 'EACCES') throw err;
    yield { op: 'chmodUnreadable', path: access, mask: OWNER_RWX };
    return yield { op: 'open', path: access };
  }
}

/** Gives the owner rwx on an open directory of the owner's that lacks it (or always, with `force`). */
function* restoreOwnerAccess(dir: OpenedDir, stat: DirStat, force: boolean): Steps<void> {
  if (!force && (stat.mode & OWNER_RWX) === OWNER_RWX) return;
  try {
    yield { op: 'fchmod', dir, mode: (stat.mode & 0o7777) | OWNER_RWX };
  } catch {
    // not ours to change (another owner): the removal reports what it then cannot do
  }
}

function* visitRootFile(w: Walk, access: string): Steps<void> {
  const frame: Frame = {
    up: undefined,
    name: path.dirname(access),
    base: path.dirname(access),
    dir: undefined,
    stat: { dev: -1, ino: -1, mode: 0, uid: -1, nlink: 0 },
    mountId: undefined,
    list: undefined,
    listed: true,
    pending: [],
    keeps: false,
    passes: 1,
  };
  yield* visitFiles(w, frame, [path.basename(access)]);
}

/** Closes the descriptor of the shallowest level still holding one whose listing is done. */
function* releaseShallowest(w: Walk): Steps<void> {
  while (w.released < w.stack.length - 1) {
    const frame = w.stack[w.released] as Frame;
    if (frame.list) return; // a wide level still being listed keeps its place
    w.released += 1;
    if (!frame.dir) continue;
    yield { op: 'close', dir: frame.dir };
    frame.dir = undefined;
    w.pinned -= 1;
    if (w.pinned <= MAX_PINNED) return;
  }
}

/** Reopens `parent` through `..` of `child` when its descriptor was released, checking it is the same directory. */
function* repin(w: Walk, parent: Frame, child: Frame): Steps<boolean> {
  if (parent.dir) return true;
  let dir: OpenedDir;
  try {
    dir = yield { op: 'open', path: `${child.base}/..` };
  } catch (err) {
    w.error(logicalOf(parent), err);
    w.aborted = true;
    return false;
  }
  if (dir.stat.dev !== parent.stat.dev || dir.stat.ino !== parent.stat.ino) {
    // Reported whatever its code says: not a system call's answer that the directory is gone.
    w.tally.errors.push(pathError(logicalOf(parent), Object.assign(new Error(`${logicalOf(parent)} was moved during its removal`), { code: 'ESTALE' })));
    w.aborted = true;
    try {
      yield { op: 'close', dir };
    } catch {
      // the walk stops at the error above either way
    }
    return false;
  }
  parent.dir = dir;
  parent.base = w.proc ? procFdPath(dir.fd) : parent.base;
  w.pinned += 1;
  w.released = Math.min(w.released, w.stack.length - 1);
  return true;
}

function* closeFrame(w: Walk, frame: Frame): Steps<void> {
  if (frame.list) yield { op: 'closeList', list: frame.list };
  frame.list = undefined;
  if (!frame.dir) return;
  yield { op: 'close', dir: frame.dir };
  frame.dir = undefined;
  w.pinned -= 1;
}

/** Removes a walked directory from its parent (or counts it); a new entry in it earns another pass. */
function* finishDir(w: Walk, frame: Frame, parent: Frame | undefined, root: string): Steps<void> {
  if (frame.held && w.removing) {
    yield* finishHeldDir(w, frame, parent, root);
    return;
  }
  if (frame.keeps) {
    if (parent) parent.keeps = true;
    return;
  }
  if (!w.removing) {
    w.tally.dirs += 1;
    return;
  }
  if (!parent && w.options.keepTop) return;
  const access = parent ? childPath(parent.base, frame.name) : root;
  for (let attempt = 0; ; attempt++) {
    try {
      yield { op: 'rmdir', path: access };
      w.tally.dirs += 1;
      return;
    } catch (err) {
      const code = systemErrorCode(err) ?? '';
      if (isGone(code)) return;
      if (code === 'ENOTDIR' && parent) {
        yield* removeSwappedIn(w, frame, parent, root);
        return;
      }
      if (!w.mayRetry(attempt) || !isRetried(code)) {
        yield* dirNotRemoved(w, frame, parent, root, err);
        return;
      }
      if (code === 'ENOTEMPTY') {
        yield* walkAgain(w, frame, parent, root);
        return;
      }
      if (parent) yield* beforeRetry(w, parent, attempt, code === 'EPERM');
      else yield { op: 'sleep', ms: w.takeDelay(attempt) };
    }
  }
}

/**
 * The directory walked was renamed away and something else put at its name (a symlink, a file)
 * before its rmdir. That thing is inside the tree being removed, so it goes as a file would:
 * unlinked, never followed. The directory moved elsewhere in the tree makes its new parent's
 * rmdir fail with ENOTEMPTY, which walks that parent again; moved out of the tree, it is no longer
 * this removal's. A directory back at the name is walked again.
 */
function* removeSwappedIn(w: Walk, frame: Frame, parent: Frame, root: string): Steps<void> {
  let found: DirStat;
  try {
    found = yield { op: 'lstat', path: childPath(parent.base, frame.name) };
  } catch (err) {
    w.error(logicalOf(frame), err);
    if (!isGone(systemErrorCode(err))) parent.keeps = true;
    return;
  }
  if ((found.mode & constants.S_IFMT) === constants.S_IFDIR) yield* walkAgain(w, frame, parent, root);
  else yield* visitFiles(w, parent, [frame.name]);
}

/** A directory's rmdir failed for good: set aside when a hold is the cause (Windows), else reported. */
function* dirNotRemoved(w: Walk, frame: Frame, parent: Frame | undefined, root: string, err: unknown): Steps<void> {
  if (w.setAsideIn !== undefined && isRetried(systemErrorCode(err))) {
    frame.held = [pathError(logicalOf(frame), err)];
    yield* finishHeldDir(w, frame, parent, root);
    return;
  }
  w.error(logicalOf(frame), err);
  if (parent) parent.keeps = true;
}

/**
 * A directory with something held under it (Windows): renamed aside whole where nothing else
 * keeps it (a mount point, another error), which frees its name; else its holds are passed up
 * to its parent, which tries the same, and at the top they are reported.
 */
function* finishHeldDir(w: Walk, frame: Frame, parent: Frame | undefined, root: string): Steps<void> {
  const held = frame.held ?? [];
  const onlyHeld = frame.keeps ? held.length > 0 && !keptForOtherReasons(w, frame) : true;
  if (onlyHeld && !(parent === undefined && w.options.keepTop)) {
    const access = parent ? childPath(parent.base, frame.name) : root;
    if (yield* setAside(w, access, logicalOf(frame))) return;
  }
  if (parent) {
    (parent.held ??= []).push(...held);
    parent.keeps = true;
  } else {
    w.tally.errors.push(...held);
  }
}

/** Whether something other than a hold keeps `frame`: an error or a path left under it. */
function keptForOtherReasons(w: Walk, frame: Frame): boolean {
  const logical = logicalOf(frame) + path.sep;
  const under = (p: string) => p.startsWith(logical);
  return w.tally.errors.some((e) => under(e.path)) || w.tally.left.some((l) => under(l.path));
}

/** Something was created in `frame` while it was walked: walk it once more, a bounded number of times. */
function* walkAgain(w: Walk, frame: Frame, parent: Frame | undefined, root: string): Steps<void> {
  if (!w.mayRetry(frame.passes - 1)) {
    yield* dirNotRemoved(w, frame, parent, root, Object.assign(new Error(`${logicalOf(frame)} kept filling during its removal`), { code: 'ENOTEMPTY' }));
    return;
  }
  yield { op: 'sleep', ms: w.takeDelay(frame.passes - 1) };
  const access = parent ? childPath(parent.base, frame.name) : root;
  const again = yield* openDir(w, access, frame.name, parent ? parent.stat.dev : frame.stat.dev, parent);
  if (!again) return;
  again.passes = frame.passes + 1;
  w.stack.push(again);
}

/** The path of `frame` for reports: built only for an error or a path left, as deep trees make long ones. */
function logicalOf(frame: Frame): string {
  const names: string[] = [];
  for (let at: Frame | undefined = frame; at; at = at.up) names.push(at.name);
  return path.join(...names.reverse());
}

/** `name` (a directory entry: never a `/` in it) inside `base`. */
function childPath(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

