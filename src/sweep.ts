import type { Dirent } from 'node:fs';
import path from 'node:path';
import { toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';
import { listEntries } from './entries.js';
import { sessionLiveness, type Liveness } from './liveness.js';
import { logger } from './log.js';
import { parseSessionName, type SessionName } from './session.js';
import { emptyTally, walkTree, type PathError, type WalkTally } from './walk.js';

const log = logger('sweep');

/** Options of `mgr.sweep()`. */
export interface SweepOptions {
  /** Report what would be removed, and remove nothing. @default false */
  readonly dryRun?: boolean;
  /** Called now and then during a long sweep with the running totals. */
  readonly onProgress?: (progress: SweepProgress) => void;
}

/** Running totals of a sweep. */
export interface SweepProgress {
  /** Files removed so far (found so far, in a dry run). */
  readonly filesRemoved: number;
  /** Bytes those files held. */
  readonly bytesFreed: number;
}

/** What a sweep did (or, with `dryRun`, would do). */
export interface SweepReport {
  /** The root that was swept. */
  readonly root: string;
  /** True when nothing was removed, only counted. */
  readonly dryRun: boolean;
  /** Orphaned sessions removed (whole). */
  readonly sessionsRemoved: number;
  /** Files (and symlinks) removed from orphaned sessions. */
  readonly filesRemoved: number;
  /** Directories removed, the sessions themselves included. */
  readonly dirsRemoved: number;
  /** Bytes the removed files held. */
  readonly bytesFreed: number;
  /** Sessions left alone because their owner is alive. */
  readonly liveSessionsSkipped: number;
  /** Sessions left alone because they are younger than `graceMs`. */
  readonly youngSessionsSkipped: number;
  /** Handoff entries removed: expired unclaimed ones, leftovers of consumed ones, and staging leftovers. */
  readonly handoffEntriesRemoved: number;
  /** Handoff entries left alone because a live claimer holds their lease. */
  readonly claimedEntriesSkipped: number;
  /** What could not be removed, each with its path and system error code. */
  readonly errors: readonly PathError[];
  /** How long the sweep took. */
  readonly durationMs: number;
}

/** Where and how to sweep. @internal */
export interface SweepTarget {
  readonly fs: FileSystem;
  readonly root: string;
  readonly staleMs: number;
  readonly graceMs: number;
  readonly hostId: string;
}

/** A session found under the root: its directory, its lock, or both. @internal */
export interface FoundSession {
  readonly name: string;
  readonly parsed: SessionName;
  readonly dir: string;
  hasDir: boolean;
  hasLock: boolean;
}

/** Lists the sessions under the root, by name; entries that are not ours are left out. @internal */
export async function findSessions(target: SweepTarget): Promise<FoundSession[]> {
  let entries: Dirent[];
  try {
    entries = await target.fs.promises.readdir(target.root, { withFileTypes: true });
  } catch (err) {
    throw toFileSystemError('read the root', target.root, err);
  }
  const sessions = new Map<string, FoundSession>();
  for (const entry of entries) {
    const isLock = entry.name.endsWith('.lock');
    const name = isLock ? entry.name.slice(0, -'.lock'.length) : entry.name;
    const parsed = parseSessionName(name);
    if (!parsed) continue;
    let found = sessions.get(name);
    if (!found) {
      found = { name, parsed, dir: path.join(target.root, name), hasDir: false, hasLock: false };
      sessions.set(name, found);
    }
    if (isLock) found.hasLock = true;
    else found.hasDir = true;
  }
  return [...sessions.values()];
}

/** Judges one session with the liveness rules. @internal */
export function judge(target: SweepTarget, session: FoundSession, now = Date.now()): Liveness {
  const { fs, staleMs, graceMs, hostId } = target;
  return sessionLiveness(session.dir, session.parsed, { fs, hostId, staleMs, graceMs, now });
}

/**
 * Removes what dead processes left under the root: orphaned sessions with all their files, and
 * locks without a session. Never a live or young session, never outside the root, never through
 * a symlink. Safe to run from several processes at once.
 */
export async function sweepRoot(target: SweepTarget, options: SweepOptions = {}): Promise<SweepReport> {
  const started = Date.now();
  const dryRun = options.dryRun ?? false;
  const tally = emptyTally();
  let sessionsRemoved = 0;
  let liveSessionsSkipped = 0;
  let youngSessionsSkipped = 0;
  const onBatch = (t: WalkTally) => options.onProgress?.({ filesRemoved: t.files, bytesFreed: t.bytes });
  for (const session of await findSessions(target)) {
    const verdict = judge(target, session);
    if (verdict === 'live') liveSessionsSkipped += 1;
    else if (verdict === 'young') youngSessionsSkipped += 1;
    else if (await removeSession(target, session, dryRun, tally, onBatch)) sessionsRemoved += 1;
  }
  const handoff = await sweepHandoff(target, dryRun, tally);
  const report: SweepReport = {
    root: target.root,
    dryRun,
    sessionsRemoved,
    filesRemoved: tally.files,
    dirsRemoved: tally.dirs,
    bytesFreed: tally.bytes,
    liveSessionsSkipped,
    youngSessionsSkipped,
    handoffEntriesRemoved: handoff.removed,
    claimedEntriesSkipped: handoff.claimed,
    errors: tally.errors,
    durationMs: Date.now() - started,
  };
  log('swept %s: %o', target.root, { ...report, errors: report.errors.length });
  return report;
}

/**
 * Removes expired unclaimed handoff entries, leftovers of consumed ones, and staging directories
 * of handoffs that crashed half-way (past `graceMs`); never an entry under a live lease.
 */
async function sweepHandoff(target: SweepTarget, dryRun: boolean, tally: WalkTally): Promise<{ removed: number; claimed: number }> {
  const { entries, staging } = await listEntries(target, target.root);
  const doomed = [
    ...entries.filter((e) => e.state === 'expired' || e.state === 'consumed').map((e) => e.path),
    ...staging.filter((s) => s.ageMs > target.graceMs).map((s) => s.path),
  ];
  for (const entry of doomed) await walkTree(entry, { fs: target.fs, remove: !dryRun }, tally);
  return { removed: doomed.length, claimed: entries.filter((e) => e.state === 'claimed').length };
}

/** Removes an orphan's directory tree, then its lock. True when the directory was removed here. */
async function removeSession(
  target: SweepTarget,
  session: FoundSession,
  dryRun: boolean,
  tally: WalkTally,
  onBatch: (t: WalkTally) => void,
): Promise<boolean> {
  const dirsBefore = tally.dirs;
  const errorsBefore = tally.errors.length;
  if (session.hasDir) await walkTree(session.dir, { fs: target.fs, remove: !dryRun, onBatch }, tally);
  const removedHere = session.hasDir && tally.errors.length === errorsBefore && tally.dirs > dirsBefore;
  if (session.hasLock && !dryRun && tally.errors.length === errorsBefore) await removeLock(target, session, tally);
  return removedHere;
}

async function removeLock(target: SweepTarget, session: FoundSession, tally: WalkTally): Promise<void> {
  await walkTree(`${session.dir}.lock`, { fs: target.fs, remove: true }, { ...emptyTally(), errors: tally.errors });
}
