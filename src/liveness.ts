import type { FileSystem } from './fs.js';
import { bootId, linuxProcessStart } from './process-identity.js';
import { lockPathOf, type SessionName } from './session.js';
import { systemErrorCode } from './errors.js';

/** What a sweeper concluded about a session. */
export type Liveness = 'live' | 'young' | 'orphan';

/** Thresholds of the liveness test. */
export interface LivenessOptions {
  readonly fs: FileSystem;
  /** This host's id: only sessions made here can be judged by their pid. */
  readonly hostId: string;
  /** A lock not refreshed for this long is stale. */
  readonly staleMs: number;
  /** A session younger than this is never an orphan. */
  readonly graceMs: number;
  /** The time to judge at (epoch ms). */
  readonly now: number;
}

/**
 * A session is an orphan only when it is past its grace period, its lock is missing or stale,
 * and (when it was made on this host) its process is gone: a live owner whose event loop was
 * blocked past `staleMs` keeps its files.
 */
export function sessionLiveness(dir: string, name: SessionName, options: LivenessOptions): Liveness {
  if (options.now - name.created < options.graceMs) return 'young';
  if (lockIsFresh(options.fs, lockPathOf(dir), options)) return 'live';
  if (name.host === options.hostId && processAlive(name.pid, name.start)) return 'live';
  return 'orphan';
}

function lockIsFresh(fs: FileSystem, lockPath: string, options: LivenessOptions): boolean {
  try {
    return options.now - fs.lstatSync(lockPath).mtimeMs < options.staleMs;
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    return true; // Cannot tell: keep.
  }
}

/**
 * Whether the process that made a session on this host still runs. On Linux: the same boot, and
 * a process with that pid and the same start time in /proc. Elsewhere: whether the pid exists at
 * all, which errs on the side of keeping.
 */
export function processAlive(pid: number, start: string): boolean {
  const [boot, ticks] = start.split('.');
  if (ticks !== undefined && process.platform === 'linux') {
    if (boot !== bootId().slice(0, 8)) return false;
    return linuxProcessStart(pid) === start;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return systemErrorCode(err) === 'EPERM';
  }
}
