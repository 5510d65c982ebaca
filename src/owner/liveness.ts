import { monotonicMs } from '../base/clock.js';
import { systemErrorCode } from '../base/errors.js';
import { machineId, readTask, type ProcessIdentity } from './process-identity.js';
import { onThisKernel, probeLiveSignal, probesReach } from './live-signal.js';

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
  /** The root as system calls reach it, where owners' live signals are probed (live-signal.ts). */
  readonly liveBase?: string;
}

/**
 * The one rule for whether an owner is alive, used by the sweep for sessions and by leases for
 * holders. No decision ever compares another host's timestamp with this host's clock:
 *
 * 0. An owner that /proc cannot show (rule 1 does not apply) but that runs on this kernel (its
 *    token names this kernel's boot; without /proc here, its host id is this host's) and holds a
 *    live signal in a root on a local file system is alive while its signal is held and dead once
 *    it is not (live-signal.ts): a blocked or stopped owner is alive, a killed one dead at once.
 * 1. An owner on this machine (the same kernel boot and PID namespace, read from its token) is
 *    judged by /proc alone: alive while the thread with its pid, thread id and start time runs
 *    (and is not a zombie), dead at once otherwise, whatever its lock or its age says. Its host
 *    id plays no part.
 * 2. On systems without /proc, an owner with this host's id is dead once its pid is gone. While
 *    the pid exists it may have been given to another process after a crash, so the owner is
 *    judged by its heartbeat, which its beat thread refreshes even while its event loop is
 *    blocked ({@link judgeHeartbeatHere}): alive while fresh by this host's clock, dead once seen
 *    older than `staleMs` at two looks {@link SECOND_LOOK_MS} apart on this process's monotonic
 *    clock, unchanged in between (a clock stepped forward ages every heartbeat at once, and the
 *    live ones change before the second look), or by rule 3.
 * 3. Any other owner is judged by its heartbeat, watched over this process's monotonic clock: dead
 *    once it was seen unchanged for `staleMs` and watched for `graceMs`; alive once it was seen to
 *    change; `young` or `unjudged` before that. What was seen is remembered per lock, in this
 *    process, so a long-running sweeper judges on its second look.
 */
export function judgeOwner(owner: ProcessIdentity | undefined, heartbeat: Heartbeat, rules: OwnerRules): OwnerVerdict {
  const checked = owner === undefined ? 'unknown' : ownerState(owner, rules.hostId, rules.liveBase);
  if (checked === 'pid-in-use') return judgeHeartbeatHere(heartbeat, rules);
  if (checked !== 'unknown') return checked;
  return judgeHeartbeat(heartbeat, rules);
}

/**
 * An owner's state as the kernel tells it: `unknown` when it is not on this machine (another
 * host, boot or PID namespace) or /proc cannot be read; `pid-in-use` for an owner of this host
 * without /proc whose pid exists, which may be another process's now (rule 2 of
 * {@link judgeOwner}: its heartbeat decides).
 */
export function ownerState(owner: ProcessIdentity, hostId: string, liveBase?: string): OwnerState {
  const byProcess = processState(owner, hostId);
  if (byProcess === 'alive' || byProcess === 'dead' || liveBase === undefined) return byProcess;
  return liveSignalState(owner, hostId, liveBase) ?? byProcess;
}

/**
 * Rule 0 of {@link judgeOwner}, for an owner the kernel's process table cannot show this process
 * (another PID namespace, no /proc here): its live signal in the root, when it holds one and runs
 * on this kernel. Its thread holds it open while it lives, blocked or stopped, and the kernel
 * closes it when it ends: `alive` or `dead` at once, with no heartbeat watched.
 */
function liveSignalState(owner: ProcessIdentity, hostId: string, liveBase: string): 'alive' | 'dead' | undefined {
  const sameKernel = onThisKernel(owner) || (owner.host === hostId && machineId() === undefined);
  if (!sameKernel || !probesReach(liveBase)) return undefined;
  return probeLiveSignal(liveBase, owner);
}

function processState(owner: ProcessIdentity, hostId: string): OwnerState {
  const machine = machineId();
  if (machine !== undefined && owner.thread !== undefined) {
    if (!onThisMachine(owner)) return 'unknown';
    const { ticks } = splitStart(owner.start);
    const task = readTask(owner.pid, owner.thread);
    if (task === 'unreadable') return 'unknown';
    return task !== undefined && !task.zombie && task.ticks === ticks ? 'alive' : 'dead';
  }
  if (machine === undefined && owner.thread === undefined && owner.host === hostId) {
    return pidExists(owner.pid) ? 'pid-in-use' : 'dead';
  }
  return 'unknown';
}

/** What {@link ownerState} found. */
export type OwnerState = 'alive' | 'dead' | 'unknown' | 'pid-in-use';

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
  /** Monotonic time of the first look that found this stamp older than `staleMs` by this host's clock. */
  oldSince?: number;
  /** How long this entry is worth keeping after the last look. */
  keepMs: number;
}

// What this process saw of other machines' heartbeats, by lock path (so, per root).
const watched = new Map<string, Watched>();
let looksSincePrune = 0;

/** Rule 3 of {@link judgeOwner} alone: an owner the kernel cannot tell about, judged by its heartbeat. */
export function judgeHeartbeat(heartbeat: Heartbeat, rules: OwnerRules): OwnerVerdict {
  const now = monotonicMs();
  if (heartbeat.stamp === 'unreadable') return 'unjudged'; // Cannot tell: keep.
  return verdictOf(look(heartbeat, rules, now), rules, now);
}

/**
 * The gap, on the observer's monotonic clock, between the two looks that must both find a
 * same-host heartbeat older than `staleMs` by this host's clock, unchanged, before its owner is
 * judged dead ({@link judgeHeartbeatHere}): a live owner's beat thread beats twice within it.
 */
const SECOND_LOOK_MS = MIN_STALE_MS;

/**
 * Rule 2 of {@link judgeOwner} for an owner of this host whose pid exists, on a system without
 * /proc: its heartbeat, stamped by this host's clock, read against the same clock. Rule 3 first:
 * seen to change, alive; seen unchanged for `staleMs` (and watched `graceMs`), dead. Otherwise
 * fresh (younger than `staleMs`, or ahead of the clock after a step back): alive. Older than
 * `staleMs` at two looks at least {@link SECOND_LOOK_MS} apart, unchanged between them: dead.
 * Older at one look only: `unjudged`, to be looked at again ({@link secondLookDueInMs}). A
 * heartbeat that cannot be read is `unjudged`; a missing one is judged by rule 3 alone.
 */
export function judgeHeartbeatHere(heartbeat: Heartbeat, rules: OwnerRules): OwnerVerdict {
  const now = monotonicMs();
  if (heartbeat.stamp === 'unreadable') return 'unjudged';
  const seen = look(heartbeat, rules, now);
  const byWatching = verdictOf(seen, rules, now);
  // Seen to change (a beat: alive, whatever the clock says) or unchanged for staleMs (dead).
  if (byWatching === 'dead' || byWatching === 'alive' || typeof seen.stamp !== 'number') return byWatching;
  if (Date.now() - seen.stamp < rules.staleMs) {
    seen.oldSince = undefined;
    return 'alive';
  }
  seen.oldSince ??= now;
  return now - seen.oldSince >= SECOND_LOOK_MS ? 'dead' : 'unjudged';
}

/**
 * How long until a second look can judge the heartbeat watched under `key` by
 * {@link judgeHeartbeatHere}: undefined unless its last look found it old and waits for that
 * second look. @internal
 */
export function secondLookDueInMs(key: string): number | undefined {
  const oldSince = watched.get(key)?.oldSince;
  if (oldSince === undefined) return undefined;
  return Math.max(0, oldSince + SECOND_LOOK_MS - monotonicMs());
}

/**
 * Waits until a second look can judge every heartbeat of `keys` that waits for one
 * ({@link secondLookDueInMs}): at most {@link SECOND_LOOK_MS}, not at all when none waits. So a
 * one-shot sweep judges a same-host owner without /proc in one run. @internal
 */
export async function untilSecondLook(keys: readonly string[]): Promise<void> {
  const waitMs = Math.max(0, ...keys.map((key) => secondLookDueInMs(key) ?? 0));
  // A timer may fire a little before the monotonic clock it is compared with has moved as far.
  if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs + TIMER_SLACK_MS));
}

const TIMER_SLACK_MS = 5;

/** Records a look at `heartbeat` (a stamp that changed since the last look starts afresh). */
function look(heartbeat: Heartbeat, rules: OwnerRules, now: number): Watched {
  pruneWatched(now);
  let seen = watched.get(heartbeat.key);
  if (seen === undefined) {
    seen = { stamp: heartbeat.stamp, firstSeen: now, changedAt: now, lookedAt: now, keepMs: 0 };
    watched.set(heartbeat.key, seen);
  } else if (seen.stamp !== heartbeat.stamp) {
    seen.stamp = heartbeat.stamp;
    seen.changedAt = now;
    seen.oldSince = undefined;
  }
  seen.lookedAt = now;
  seen.keepMs = 2 * (rules.staleMs + rules.graceMs);
  return seen;
}

/** Rule 3's verdict on what was seen of one heartbeat. */
function verdictOf(seen: Watched, rules: OwnerRules, now: number): OwnerVerdict {
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

