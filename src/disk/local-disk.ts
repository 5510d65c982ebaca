import { fs } from './fs.js';
import { monotonicMs } from '../base/clock.js';
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

// Inline I/O. On a local disk, a write of up to 64 KiB lands in the page cache in a few
// microseconds, and in tmpfs so does a create: less than a trip to the thread pool costs the
// process (a futex to wake a pool thread, an eventfd and an epoll wake-up to come back; 60 to
// 80 µs of CPU per call on a loaded two-core machine, a third of an upload's CPU). So these calls
// are made inline. The kernel may make them wait instead (dirty pages over their limit, a device
// pushing back), and then it makes call after call wait: a second call slower than SLOW_INLINE_MS
// within SLOW_CONFIRM_CALLS calls of the first, or one slower than VERY_SLOW_INLINE_MS, sends every
// such call of the process to the thread pool for INLINE_PAUSE_MS, so the event loop never waits
// on a busy disk. One slow call alone does not: on a busy machine the scheduler takes the CPU
// from the thread for a time slice now and then, in the middle of any call (an upload server
// beside its clients on two cores: 3 to 7 ms, every second or so), and one such call took the
// uploads of the next 5 s through the thread pool, at 1.26 times the CPU (1 MiB, 32 at once).
const SLOW_INLINE_MS = 2;
const SLOW_CONFIRM_CALLS = 64;
const VERY_SLOW_INLINE_MS = 20;
const INLINE_PAUSE_MS = 5000;
let inlinePausedUntil = 0;
/** Inline calls made since the last slow one. */
let callsSinceSlow = Number.POSITIVE_INFINITY;

/** False for a while after inline calls were slow (see {@link runInline}). @internal */
export function inlineAllowed(): boolean {
  return inlinePausedUntil === 0 || monotonicMs() >= inlinePausedUntil;
}

/** Runs `call` (one call on a local disk) now; if calls are slower than the page cache, inline calls pause for a while. @internal */
export function runInline<T>(call: () => T): T {
  const started = monotonicMs();
  try {
    return call();
  } finally {
    const finished = monotonicMs();
    const took = finished - started;
    callsSinceSlow += 1;
    if (took > SLOW_INLINE_MS) {
      if (took > VERY_SLOW_INLINE_MS || callsSinceSlow <= SLOW_CONFIRM_CALLS) inlinePausedUntil = finished + INLINE_PAUSE_MS;
      callsSinceSlow = 0;
    }
  }
}

/** A local file system held in memory (tmpfs, ramfs), or one on a device. @internal */
export type LocalDiskKind = 'memory' | 'device';

/** True when `dir` is on a local file system of Linux (see {@link LOCAL_FILE_SYSTEMS}); false when unsure. @internal */
export function isLocalDisk(dir: string): boolean {
  return localDiskKind(dir) !== undefined;
}

/**
 * What `dir` is on: a local file system of Linux held in memory (tmpfs, ramfs) or on a device
 * (see {@link LOCAL_FILE_SYSTEMS}); undefined when not local or unsure. @internal
 */
export function localDiskKind(dir: string): LocalDiskKind | undefined {
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
