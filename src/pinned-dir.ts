import { constants, existsSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { systemErrorCode } from './errors.js';
import type { FileSystem } from './fs.js';

const OPEN_DIR = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0);
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

/**
 * A directory opened with O_NOFOLLOW, whose entries are reached through `base`: on Linux
 * `/proc/self/fd/<fd>`, which the kernel resolves inside the directory that was opened, so
 * swapping the directory's path for a symlink afterwards cannot send a call anywhere else.
 * Elsewhere (or on an injected file system) `base` is the path itself.
 */
export interface PinnedDir {
  readonly base: string;
  close(): Promise<void>;
}

/** Opens `dir` pinned; 'gone' if it does not exist, 'not-a-dir' for a file or a symlink. */
export async function openPinned(fs: FileSystem, dir: string): Promise<PinnedDir | 'gone' | 'not-a-dir'> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(dir, OPEN_DIR);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ENOENT') return 'gone';
    if (code === 'ELOOP' || code === 'ENOTDIR') return 'not-a-dir';
    throw err;
  }
  const close = () => handle.close().catch(() => {});
  if (PROC_FD) {
    const base = `/proc/self/fd/${handle.fd}`;
    if (await sameDir(fs, base, handle)) return { base, close };
  }
  await close();
  return { base: dir, close: async () => {} };
}

/** A {@link PinnedDir} whose `close` is synchronous and idempotent. */
export interface PinnedDirSync {
  readonly base: string;
  close(): void;
}

/** Sync twin of {@link openPinned}. */
export function openPinnedSync(fs: FileSystem, dir: string): PinnedDirSync | 'gone' | 'not-a-dir' {
  let fd: number;
  try {
    fd = fs.openSync(dir, OPEN_DIR);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ENOENT') return 'gone';
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
  if (PROC_FD && sameDirSync(fs, `/proc/self/fd/${fd}`, fd)) return { base: `/proc/self/fd/${fd}`, close };
  close();
  return { base: dir, close: () => {} };
}

async function sameDir(fs: FileSystem, base: string, handle: FileHandle): Promise<boolean> {
  try {
    const [viaProc, viaHandle] = await Promise.all([fs.promises.lstat(`${base}/.`), handle.stat()]);
    return viaProc.ino === viaHandle.ino && viaProc.dev === viaHandle.dev;
  } catch {
    return false;
  }
}

function sameDirSync(fs: FileSystem, base: string, fd: number): boolean {
  try {
    const viaProc = fs.lstatSync(`${base}/.`);
    const viaFd = fs.fstatSync(fd);
    return viaProc.ino === viaFd.ino && viaProc.dev === viaFd.dev;
  } catch {
    return false;
  }
}
