import type { FileHandle } from 'node:fs/promises';
import { isGone, systemErrorCode } from '../base/errors.js';
import { fs } from './fs.js';
import { isProcFdPath, procFd, procFdPath } from './proc.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

const OPEN_DIR = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0);
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * A directory opened with O_NOFOLLOW, whose entries are reached through `base`: on Linux
 * `/proc/self/fd/<fd>`, which the kernel resolves inside the directory that was opened, so
 * swapping the directory's path for a symlink afterwards cannot send a call anywhere else.
 * Elsewhere `base` is the path itself.
 */
export interface PinnedDir {
  readonly base: string;
  /** fsync of the directory, so that names made in it survive a power loss; a no-op where it cannot be done. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link openPinned}. */
export interface OpenPinnedOptions {
  /** Follow a symlink at `dir` itself (a path the caller chose, not one inside the root). @default false */
  readonly followLinks?: boolean;
}

/** Opens `dir` pinned; 'gone' if it does not exist, 'not-a-dir' for a file or (unless followed) a symlink. */
export async function openPinned(
  dir: string,
  options: OpenPinnedOptions = {},
): Promise<PinnedDir | 'gone' | 'not-a-dir'> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(dir, options.followLinks ? OPEN_DIR : OPEN_DIR | NOFOLLOW);
  } catch (err) {
    const code = systemErrorCode(err);
    if (isGone(code)) return 'gone';
    if (code === 'ELOOP' || code === 'ENOTDIR') return 'not-a-dir';
    throw err;
  }
  const close = () => handle.close().catch(() => {});
  const sync = () => handle.sync().catch(() => {}); // some file systems refuse fsync on a directory
  if (procFd()) {
    const base = procFdPath(handle.fd);
    let same: boolean;
    try {
      same = await sameDir(base, handle);
    } catch (err) {
      await close();
      throw err;
    }
    if (same) return { base, sync, close };
  }
  await close();
  return { base: dir, sync: async () => {}, close: async () => {} };
}

/** A {@link PinnedDir} whose `close` is synchronous and idempotent. */
export interface PinnedDirSync {
  readonly base: string;
  close(): void;
}

/** Sync twin of {@link openPinned}. */
export function openPinnedSync(dir: string): PinnedDirSync | 'gone' | 'not-a-dir' {
  let fd: number;
  try {
    fd = fs.openSync(dir, OPEN_DIR | NOFOLLOW);
  } catch (err) {
    const code = systemErrorCode(err);
    if (isGone(code)) return 'gone';
    if (code === 'ELOOP' || code === 'ENOTDIR') return 'not-a-dir';
    throw err;
  }
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    try {
      fs.closeSync(fd);
    } catch {
      // closing is all that was left to do
    }
  };
  let same = false;
  try {
    // Below a directory already reached through its /proc path, that path was checked to lead to
    // its descriptor: so does this one's. Only a first pin (the root's) is checked.
    same = procFd() && (isProcFdPath(dir) || sameDirSync(procFdPath(fd), fd));
  } catch (err) {
    close();
    throw err;
  }
  if (same) return { base: procFdPath(fd), close };
  close();
  return { base: dir, close: () => {} };
}

// Where /proc is missing, the check fails with ENOENT and the path is used.
// Any other failure is the file system's, and is reported.
async function sameDir(base: string, handle: FileHandle): Promise<boolean> {
  try {
    const [viaProc, viaHandle] = await Promise.all([fs.promises.lstat(`${base}/.`), handle.stat()]);
    return viaProc.ino === viaHandle.ino && viaProc.dev === viaHandle.dev;
  } catch (err) {
    if (noProc(err)) return false;
    throw err;
  }
}

function sameDirSync(base: string, fd: number): boolean {
  try {
    const viaProc = fs.lstatSync(`${base}/.`);
    const viaFd = fs.fstatSync(fd);
    return viaProc.ino === viaFd.ino && viaProc.dev === viaFd.dev;
  } catch (err) {
    if (noProc(err)) return false;
    throw err;
  }
}

function noProc(err: unknown): boolean {
  const code = systemErrorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
