import { systemErrorCode } from '../errors.js';
import type { FileSystem } from '../disk/fs.js';
import { machineId, readTask, type ProcessIdentity } from './process-identity.js';
import { sessionLockPath, type OwnerToken } from '../layout.js';

/**
 * The least `staleMs` a manager, a claimer or a sweeper may have: the heartbeat below must change
 * several times within it. @internal
 */
export const MIN_STALE_MS = 2_000;

/**
 * How often every owner refreshes its heartbeats (its session's lock, the held files of its
 * claims), whatever its own `staleMs`: an observer on another host judges it by the observer's
 * `staleMs`, which may be as short as {@link MIN_STALE_MS}, so every owner beats at half of that.
 */
export const HEARTBEAT_MS = MIN_STALE_MS / 2;

/**
 * What a sweeper concluded about a session: `live` (keep), `orphan` (remove), `young` (an owner
 * that cannot be checked, watched for less than `graceMs`: keep), `unjudged` (an owner that
 * cannot be checked, whose heartbeat was not watched long enough yet: keep).
 */
export type Liveness = 'live' | 'young' | 'orphan' | 'unjudged';

/** Whether an owner (a session's or a lease holder's thread) is alive. */
export type OwnerVerdict = 'alive' | 'dead' | 'young' | 'unjudged';

/** An owner's heartbeat as seen now: its lock's mtime, or that the lock is missing or unreadable. */
export interface Heartbeat {
  /** What is watched (the lock's path): observations of one key are compared with each other. */
  readonly key: string;
  readonly stamp: number | 'missing' | 'unreadable';
}

/** The thresholds of {@link judgeOwner}. */
export interface OwnerRules {
  /** A heartbeat seen unchanged for this long (on this process's monotonic clock) has stopped. */
  readonly staleMs: number;
  /** An owner that cannot be checked is watched for at least this long before it can be judged dead. */
  readonly graceMs: number;
  /** This host's id: on systems without /proc, a same-host owner is checked by its pid. */
  readonly hostId: string;
}

/**
 * The one rule for whether an owner is alive, used by the sweep for sessions and by leases for
 * holders. No decision ever compares another host's timestamp with this host's clock:
 *
 * 1. An owner on this machine (the same kernel boot and PID namespace, read from its token) is
 *    judged by /proc alone: alive while the thread with its pid, thread id and start time runs
 *    (and is not a zombie), dead at once otherwise, whatever its lock or its age says. Its host
 *    id plays no part.
 * 2. On systems without /proc, an owner with this host's id is alive while its pid exists.
 * 3. Any other owner is judged by its heartbeat, watched over this process's monotonic clock: dead
 *    once it was seen unchanged for `staleMs` and watched for `graceMs`; alive once it was seen to
 *    change; `young` or `unjudged` before that. What was seen is remembered per lock, in this
 *    process, so a long-running sweeper judges on its second look.
 */
export function judgeOwner(owner: ProcessIdentity | undefined, heartbeat: Heartbeat, rules: OwnerRules): OwnerVerdict {
  const checked = owner === undefined ? 'unknown' : ownerState(owner, rules.hostId);
  if (checked !== 'unknown') return checked;
  return judgeHeartbeat(heartbeat, rules);
}

/**
 * An owner's state as the kernel tells it: `unknown` when it is not on this machine (another
 * host, boot or PID namespace) or /proc cannot be read.
 */
export function ownerState(owner: ProcessIdentity, hostId: string): 'alive' | 'dead' | 'unknown' {
  const machine = machineId();
  if (machine !== undefined && owner.thread !== undefined) {
    if (!onThisMachine(owner)) return 'unknown';
    const { ticks } = splitStart(owner.start);
    const task = readTask(owner.pid, owner.thread);
    if (task === 'unreadable') return 'unknown';
    return task !== undefined && !task.zombie && task.ticks === ticks ? 'alive' : 'dead';
  }
  if (machine === undefined && owner.thread === undefined && owner.host === hostId) {
    return pidExists(owner.pid) ? 'alive' : 'dead';
  }
  return 'unknown';
}

/** True when the owner's token says it runs on this machine (this kernel boot and PID namespace). */
export function onThisMachine(owner: ProcessIdentity): boolean {
  const machine = machineId();
  return machine !== undefined && owner.thread !== undefined && splitStart(owner.start).ownerMachine === machine;
}

function splitStart(start: string): { ownerMachine: string; ticks: string } {
  const cut = start.lastIndexOf('.');
  return { ownerMachine: start.slice(0, cut), ticks: start.slice(cut + 1) };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return systemErrorCode(err) === 'EPERM';
  }
}

interface Watched {
  stamp: Heartbeat['stamp'];
  /** Monotonic times: first seen, last seen to change, last looked at. */
  firstSeen: number;
  changedAt: number;
  lookedAt: number;
  /** How long this entry is worth keeping after the last look. */
  keepMs: number;
}

// What this process saw of other machines' heartbeats, by lock path (so, per root).
const watched = new Map<string, Watched>();
let looksSincePrune = 0;

/** Rule 3 of {@link judgeOwner} alone: an owner the kernel cannot tell about, judged by its heartbeat. */
export function judgeHeartbeat(heartbeat: Heartbeat, rules: OwnerRules): OwnerVerdict {
  const now = performance.now();
  pruneWatched(now);
  if (heartbeat.stamp === 'unreadable') return 'unjudged'; // Cannot tell: keep.
  let seen = watched.get(heartbeat.key);
  if (seen === undefined) {
    seen = { stamp: heartbeat.stamp, firstSeen: now, changedAt: now, lookedAt: now, keepMs: 0 };
    watched.set(heartbeat.key, seen);
  } else if (seen.stamp !== heartbeat.stamp) {
    seen.stamp = heartbeat.stamp;
    seen.changedAt = now;
  }
  seen.lookedAt = now;
  seen.keepMs = 2 * (rules.staleMs + rules.graceMs);
  const watchedFor = now - seen.firstSeen;
  if (now - seen.changedAt >= rules.staleMs && watchedFor >= rules.graceMs) return 'dead';
  if (seen.changedAt > seen.firstSeen) return 'alive';
  return watchedFor < rules.graceMs ? 'young' : 'unjudged';
}

function pruneWatched(now: number): void {
  if (++looksSincePrune < 64) return;
  looksSincePrune = 0;
  for (const [key, seen] of watched) if (now - seen.lookedAt > seen.keepMs) watched.delete(key);
}

/** What a session judgement needs. */
export type LivenessOptions = OwnerRules & { readonly fs: FileSystem };

/**
 * Judges a session by {@link judgeOwner}, its lock's mtime as the heartbeat. `access` is the
 * session's directory as system calls reach it (through the root's descriptor); `dir` names it.
 */
export function sessionLiveness(dir: string, name: OwnerToken, options: LivenessOptions, access = dir): Liveness {
  const lockPath = sessionLockPath(dir);
  const verdict = judgeOwner(name, { key: lockPath, stamp: lockStamp(options.fs, sessionLockPath(access)) }, options);
  return verdict === 'alive' ? 'live' : verdict === 'dead' ? 'orphan' : verdict;
}

function lockStamp(fs: FileSystem, lockPath: string): Heartbeat['stamp'] {
  try {
    return fs.lstatSync(lockPath).mtimeMs;
  } catch (err) {
    return systemErrorCode(err) === 'ENOENT' ? 'missing' : 'unreadable';
  }
}
