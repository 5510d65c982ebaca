import type { RootContext } from '../root/root.js';
import { toFileSystemError } from '../base/errors.js';
import { parseRootEntry, sessionLockPath, type OwnerToken } from '../base/layout.js';
import { judgeOwner, onThisMachine, secondLookDueInMs, untilSecondLook, type OwnerVerdict } from '../owner/liveness.js';
import { readHeartbeat } from '../owner/heartbeat.js';
import { emptyTally, walkTree, type WalkTally } from '../disk/walk.js';
import { fs } from '../disk/fs.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

// Sessions sweep their own: what lies at the top of the root, judged by the liveness rule with
// each session's lock as its heartbeat, and an orphan's tree removed, then its lock.

/** A session found under the root: its directory, its lock, or both. @internal */
export interface FoundSession {
  readonly name: string;
  readonly parsed: OwnerToken;
  readonly dir: string;
  /** The directory as system calls reach it: through the root's descriptor where there is /proc. */
  readonly access: string;
  hasDir: boolean;
  hasLock: boolean;
}

/** What lies at the top of the root: sessions (directory, lock or both) and foreign names. @internal */
export interface RootListing {
  readonly sessions: FoundSession[];
  readonly foreign: string[];
  /** Names of closed sessions set aside while another handle held a file in them (Windows): nobody's. */
  readonly setAside: string[];
  /** The live signals at the top of the root (owner/live-signal.ts), held or not. */
  readonly liveSignals: string[];
}

/**
 * Lists the sessions under the root, by name; names that are not ours are listed as foreign.
 * Names only: a listing with entry types would lstat each name where the file system gives no
 * types (d_type), and fail whole on one that vanished in between. @internal
 */
export async function findSessions(target: RootContext, rootBase = target.root): Promise<RootListing> {
  let names: string[];
  try {
    names = await fs.promises.readdir(rootBase);
  } catch (err) {
    throw toFileSystemError('read the root', target.root, err);
  }
  const sessions = new Map<string, FoundSession>();
  const foreign: string[] = [];
  const setAside: string[] = [];
  const liveSignals: string[] = [];
  for (const name of names) {
    const parsed = parseRootEntry(name);
    if (parsed.kind === 'foreign') foreign.push(path.join(target.root, name));
    if (parsed.kind === 'set-aside') setAside.push(name);
    if (parsed.kind === 'live-signal') liveSignals.push(name);
    if (parsed.kind !== 'session' && parsed.kind !== 'session-lock') continue;
    let found = sessions.get(parsed.session);
    if (!found) {
      const dir = path.join(target.root, parsed.session);
      found = { name: parsed.session, parsed: parsed.owner, dir, access: `${rootBase}/${parsed.session}`, hasDir: false, hasLock: false };
      sessions.set(parsed.session, found);
    }
    if (parsed.kind === 'session-lock') found.hasLock = true;
    else found.hasDir = true;
  }
  return { sessions: [...sessions.values()], foreign, setAside, liveSignals };
}

/**
 * Judges one session by the liveness rule (`judgeOwner`), its lock's heartbeat read through
 * `session.access` and remembered by the lock's public path. @internal
 */
export function judge(target: RootContext, session: FoundSession): OwnerVerdict {
  const heartbeat = { key: sessionLockPath(session.dir), stamp: readHeartbeat(sessionLockPath(session.access)) };
  return judgeOwner(session.parsed, heartbeat, { ...target, liveBase: path.dirname(session.access) });
}

/** What sweeping the sessions did. @internal */
export interface SessionsSwept {
  readonly removed: number;
  /** Sessions left alone, by verdict. */
  readonly skipped: Readonly<Record<Exclude<OwnerVerdict, 'dead'>, number>>;
  /** Host ids, other than the sweeper's, of sessions made on this machine. */
  readonly hostIdMismatches: readonly string[];
}

/** How one run sweeps: shared with the sweep of handoff entries. @internal */
export interface SweepRun {
  readonly dryRun: boolean;
  readonly tally: WalkTally;
  /** The root is on a local disk: the walk's calls are made inline, in turns of a millisecond (walk-steps.ts). */
  readonly inline?: boolean;
  /** Progress as sessions are done: `done` of `total` (a first look; each is judged again before removal). */
  readonly onProgress?: (tally: WalkTally, done: number, total: number) => void;
}

/**
 * Removes the orphaned sessions among `sessions` (each judged right before its removal): never a
 * live or young one, never outside the root, never through a symlink. @internal
 */
export async function sweepSessions(target: RootContext, sessions: readonly FoundSession[], run: SweepRun): Promise<SessionsSwept> {
  const skipped = { alive: 0, young: 0, unjudged: 0 };
  const mismatches = new Set<string>();
  let removed = 0;
  let total = run.onProgress ? sessions.filter((s) => judge(target, s) === 'dead').length : 0;
  let done = 0;
  const onBatch = (t: WalkTally) => {
    total = Math.max(total, done);
    run.onProgress?.(t, done, total);
  };
  const settle = async (session: FoundSession, verdict: OwnerVerdict) => {
    if (verdict !== 'dead') skipped[verdict] += 1;
    else {
      if (await removeSession(session, { ...run, onBatch })) removed += 1;
      done += 1;
      onBatch(run.tally);
    }
  };
  const lookAgain: FoundSession[] = [];
  for (const session of sessions) {
    if (session.parsed.host !== target.hostId && onThisMachine(session.parsed)) mismatches.add(session.parsed.host);
    const verdict = judge(target, session);
    if (verdict === 'unjudged' && secondLookDueInMs(sessionLockPath(session.dir)) !== undefined) lookAgain.push(session);
    else await settle(session, verdict);
  }
  // Sessions of this host (without /proc) whose heartbeat the first look found old, whose pid may
  // be another process's now: one sweep, the CLI's included, judges them at its second look.
  await untilSecondLook(lookAgain.map((session) => sessionLockPath(session.dir)));
  for (const session of lookAgain) await settle(session, judge(target, session));
  return { removed, skipped, hostIdMismatches: [...mismatches].sort() };
}

/** Removes an orphan's directory tree, then its lock. True when the directory was removed here. */
async function removeSession(
  session: FoundSession,
  run: SweepRun & { readonly onBatch: (t: WalkTally) => void },
): Promise<boolean> {
  const { dryRun, tally, onBatch, inline } = run;
  const dirsBefore = tally.dirs;
  const errorsBefore = tally.errors.length;
  const leftBefore = tally.left.length;
  if (session.hasDir) await walkTree(session.dir, { remove: !dryRun, onBatch, access: session.access, inline }, tally);
  const whole = tally.errors.length === errorsBefore && tally.left.length === leftBefore;
  const removedHere = session.hasDir && whole && tally.dirs > dirsBefore;
  if (session.hasLock && !dryRun && whole) await removeLock(session, tally);
  return removedHere;
}

/**
 * Removes the closed sessions a removal set aside at the top of the root (`setAside`, names from
 * {@link findSessions}): their owner gave them up, so no liveness is judged; what is still held
 * stays for the next sweep, and its failure is reported. The count of those removed whole. @internal
 */
export async function sweepSetAside(target: RootContext, rootBase: string, setAside: readonly string[], run: SweepRun): Promise<number> {
  let removed = 0;
  for (const name of setAside) {
    const { tally } = run;
    const errorsBefore = tally.errors.length;
    const leftBefore = tally.left.length;
    await walkTree(path.join(target.root, name), { remove: !run.dryRun, access: `${rootBase}/${name}` }, tally);
    if (tally.errors.length === errorsBefore && tally.left.length === leftBefore) removed += 1;
  }
  return removed;
}

async function removeLock(session: FoundSession, tally: WalkTally): Promise<void> {
  await walkTree(sessionLockPath(session.dir), { remove: true, access: sessionLockPath(session.access) }, { ...emptyTally(), errors: tally.errors, left: tally.left });
}
