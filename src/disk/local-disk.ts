import { fs } from './fs.js';
import { HOST_PLATFORM } from '../base/platform.js';

/**
 * `statfs` magic numbers of the local file systems, where a close, a small write or a small
 * unlink takes a few microseconds: made inline, they cost less than a trip to the thread pool.
 * Network and FUSE file systems (NFS, SMB, sshfs...) are not here: a close there may flush over
 * the network, so every call of theirs stays in the thread pool.
 */
const LOCAL_FILE_SYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0x794c7630, // overlayfs (containers)
  0xf2f52010, // f2fs
  0x2fc12fc1, // zfs
  0xca451a4e, // bcachefs
]);

/**
 * `statfs` magic numbers of the file systems held in memory: with no device behind them, a
 * removal there never waits for one (on a disk, an rmdir may wait for a discard).
 */
const MEMORY_FILE_SYSTEMS = new Set([
  0x01021994, // tmpfs
  0x858458f6, // ramfs
]);

/** At most this many bytes are written or unlinked inline, on a local file system (about 15 µs). */
export const INLINE_IO_MAX_BYTES = 64 * 1024;

/** True when `dir` is on a local file system of Linux (see {@link LOCAL_FILE_SYSTEMS}); false when unsure. @internal */
export function isLocalDisk(dir: string): boolean {
  return localDiskKind(dir) !== undefined;
}

/**
 * What `dir` is on: a local file system of Linux held in memory (tmpfs, ramfs) or on a device
 * (see {@link LOCAL_FILE_SYSTEMS}); undefined when not local or unsure. @internal
 */
export function localDiskKind(dir: string): 'memory' | 'device' | undefined {
  if (HOST_PLATFORM !== 'linux') return undefined;
  let type: number;
  try {
    type = fs.statfsSync(dir).type;
  } catch {
    return undefined;
  }
  if (MEMORY_FILE_SYSTEMS.has(type)) return 'memory';
  return LOCAL_FILE_SYSTEMS.has(type) ? 'device' : undefined;
}
