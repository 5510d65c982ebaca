import type { Dirent } from 'node:fs';
import path from 'node:path';
import type { RootContext } from '../root.js';
import { systemErrorCode, toFileSystemError, UnsafeRootError } from '../errors.js';
import { openPinned } from '../disk/pinned-dir.js';
import type { FileSystem } from '../disk/fs.js';
import { scanHandoff, type EntryInfo, type FoundEntry } from '../handoff/entries.js';
import { takeForRemoval } from '../handoff/lease.js';
import { handoffDirOf, isDataFile, parseRootEntry, sessionLockPath, TAKEN_FOR_REMOVAL, type OwnerToken } from '../layout.js';
import { removeListedFlatDir } from '../disk/remove.js';
import { checkExistingRoot, requireMarkedRoot } from '../root.js';
import { ownOptions } from '../options.js';
import { onThisMachine, sessionLiveness, type Liveness } from './liveness.js';
import { logger } from '../log.js';
import { emptyTally, pathError, walkTree, type LeftPath, type PathError, type WalkTally } from '../disk/walk.js';

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
  /** Orphaned sessions done so far (removed, or counted in a dry run). */
  readonly sessionsDone: number;
  /** Orphaned sessions the sweep found when it started: the total `sessionsDone` goes to. */
  readonly sessionsTotal: number;
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
  /**
   * Sessions left alone because their owner cannot be checked (another machine) and this process
   * has watched them for less than `graceMs`.
   */
  readonly youngSessionsSkipped: number;
  /**
   * Sessions of another machine left alone because this process has not yet watched their lock
   * long enough (`staleMs`) to tell whether their owner still refreshes it. A long-running sweeper
   * judges them at a later sweep.
   */
  readonly unjudgedSessionsSkipped: number;
  /**
   * Host ids, other than the sweeper's, of sessions made on this machine. Such a session is judged
   * by its process like any other of this machine; a mismatch usually means a `hostId` option or
   * `TEMPFILE_MANAGER_HOST_ID` set differently in the app and in the sweeper.
   */
  readonly hostIdMismatches: readonly string[];
  /** Handoff entries removed: expired unclaimed ones, leftovers of consumed ones, and staging leftovers. */
  readonly handoffEntriesRemoved: number;
  /** Handoff entries left alone because a live claimer holds their lease. */
  readonly claimedEntriesSkipped: number;
  /**
   * Paths under the root (at its top, and in `handoff/`) whose names are not the library's: the
   * sweep never removes them.
   */
  readonly foreign: readonly string[];
  /** What could not be removed, each with its path and system error code. */
  readonly errors: readonly PathError[];
  /**
   * What was left in place on purpose, each with its path and why: a mount point inside an
   * orphan's directory (a sweep never crosses into another file system). Not an error: unmount
   * it, and the next sweep removes it.
   */
  readonly left: readonly LeftPath[];
  /** How long the sweep took. */
  readonly durationMs: number;
}

/** Where and how to sweep. @internal */
export type SweepTarget = RootContext;

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
}

/** Lists the sessions under the root, by name; names that are not ours are listed as foreign. @internal */
export async function findSessions(target: SweepTarget, rootBase = target.root): Promise<RootListing> {
  let entries: Dirent[];
  try {
    entries = await target.fs.promises.readdir(rootBase, { withFileTypes: true });
  } catch (err) {
    throw toFileSystemError('read the root', target.root, err);
  }
  const sessions = new Map<string, FoundSession>();
  const foreign: string[] = [];
  for (const entry of entries) {
    const parsed = parseRootEntry(entry.name);
    if (parsed.kind === 'foreign') foreign.push(path.join(target.root, entry.name));
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
  return { sessions: [...sessions.values()], foreign };
}

/** Judges one session with the liveness rules (`judgeOwner`). @internal */
export function judge(target: SweepTarget, session: FoundSession): Liveness {
  const { fs, staleMs, graceMs, hostId } = target;
  return sessionLiveness(session.dir, session.parsed, { fs, hostId, staleMs, graceMs }, session.access);
}

/**
 * Removes what dead processes left under the root: orphaned sessions with all their files, and
 * locks without a session. Never a live or young session, never outside the root, never through
 * a symlink. Safe to run from several processes at once. `only` limits it to some sessions (and
 * leaves the handoff directory alone).
 */
export async function sweepRoot(
  target: SweepTarget,
  sweepOptions: SweepOptions = {},
  only?: (session: FoundSession) => boolean,
): Promise<SweepReport> {
  const options = ownOptions(sweepOptions);
  const started = Date.now();
  const dryRun = options.dryRun ?? false;
  const pinnedRoot = await pinRoot(target);
  try {
    return await sweepPinned(target, pinnedRoot.base, { options, dryRun, started }, only);
  } finally {
    await pinnedRoot.close();
  }
}

/**
 * The root as one sweep reaches it: the manager's own descriptor, checked against the root it
 * was made with, or one opened here without following a link (the CLI). A root swapped for a
 * symlink during the sweep then changes nothing: every session, lock and entry is reached
 * through it, and only reported by its path.
 */
async function pinRoot(target: SweepTarget): Promise<{ base: string; close(): Promise<void> }> {
  target.verifyRoot?.();
  if (target.rootBase) return { base: target.rootBase(), close: async () => {} };
  let pinned: Awaited<ReturnType<typeof openPinned>>;
  try {
    pinned = await openPinned(target.fs, target.root);
  } catch (err) {
    throw toFileSystemError('open the root', target.root, err);
  }
  if (pinned === 'gone') requireMarkedRoot(target.fs, target.root); // throws: no marker, no root
  if (pinned === 'not-a-dir') checkExistingRoot(target.fs, target.root); // throws: a symlink, or not a directory
  if (typeof pinned === 'string') throw new UnsafeRootError('not-a-directory', target.root, `The root ${target.root} cannot be opened as a directory: check the path.`);
  return pinned;
}

async function sweepPinned(
  target: SweepTarget,
  rootBase: string,
  run: { readonly options: SweepOptions; readonly dryRun: boolean; readonly started: number },
  only: ((session: FoundSession) => boolean) | undefined,
): Promise<SweepReport> {
  const { options, dryRun, started } = run;
  const tally = emptyTally();
  const skipped: Record<Exclude<Liveness, 'orphan'>, number> = { live: 0, young: 0, unjudged: 0 };
  const mismatches = new Set<string>();
  let sessionsRemoved = 0;
  requireMarkedRoot(target.fs, target.root, rootBase);
  const top = await findSessions(target, rootBase);
  const walk = await walkDefaults(target, rootBase);
  const sessions = only ? top.sessions.filter(only) : top.sessions;
  // A first look, for the progress total only: each session is judged again right before removal.
  let sessionsTotal = options.onProgress ? sessions.filter((s) => judge(target, s) === 'orphan').length : 0;
  let sessionsDone = 0;
  const onBatch = (t: WalkTally) => {
    sessionsTotal = Math.max(sessionsTotal, sessionsDone);
    options.onProgress?.({ filesRemoved: t.files, bytesFreed: t.bytes, sessionsDone, sessionsTotal });
  };
  for (const session of sessions) {
    if (session.parsed.host !== target.hostId && onThisMachine(session.parsed)) mismatches.add(session.parsed.host);
    const verdict = judge(target, session);
    if (verdict !== 'orphan') skipped[verdict] += 1;
    else {
      if (await removeSession(target, session, dryRun, tally, onBatch)) sessionsRemoved += 1;
      sessionsDone += 1;
      onBatch(tally);
    }
  }
  const handoff = only ? { removed: 0, claimed: 0, foreign: [] } : await sweepHandoff(target, rootBase, dryRun, tally, walk);
  const report: SweepReport = {
    root: target.root,
    dryRun,
    sessionsRemoved,
    filesRemoved: tally.files,
    dirsRemoved: tally.dirs,
    bytesFreed: tally.bytes,
    liveSessionsSkipped: skipped.live,
    youngSessionsSkipped: skipped.young,
    unjudgedSessionsSkipped: skipped.unjudged,
    hostIdMismatches: [...mismatches].sort(),
    handoffEntriesRemoved: handoff.removed,
    claimedEntriesSkipped: handoff.claimed,
    foreign: [...top.foreign, ...handoff.foreign],
    errors: tally.errors,
    left: tally.left,
    durationMs: Date.now() - started,
  };
  log('swept %s: %o', target.root, { ...report, errors: report.errors.length });
  return report;
}

/**
 * Removes expired unclaimed handoff entries and leftovers of consumed ones; never an entry under
 * a live lease, never a name that is not an entry's.
 */
async function sweepHandoff(
  target: SweepTarget,
  rootBase: string,
  dryRun: boolean,
  tally: WalkTally,
  walk: WalkDefaults,
): Promise<{ removed: number; claimed: number; foreign: string[] }> {
  const result = { removed: 0, claimed: 0, foreign: [] as string[] };
  await scanHandoff(target, { root: target.root, rootBase }, Date.now(), {
    entry: async (entry, found) => {
      if (entry.state === 'claimed') result.claimed += 1;
      if (entry.state !== 'expired' && entry.state !== 'consumed') return;
      try {
        if (await sweepEntry(target, dryRun, tally, walk, entry, found)) result.removed += 1;
      } catch (err) {
        tally.errors.push(pathError(entry.path, err)); // this entry only: the sweep goes on
      }
    },
    foreign: (file) => void result.foreign.push(file),
  });
  return result;
}

/** Removes one expired or consumed entry; true when it was removed (or would be, in a dry run). */
async function sweepEntry(
  target: SweepTarget,
  dryRun: boolean,
  tally: WalkTally,
  walk: WalkDefaults,
  entry: EntryInfo,
  found: FoundEntry,
): Promise<boolean> {
  const taken = dryRun ? found : await takeEntry(target, found);
  if (taken === undefined) return false; // claimed since it was judged: the next sweep judges it again
  const { at, files } = taken;
  // An entry as the library leaves it (files only, on the handoff directory's mount): removed in
  // a few calls, and only what was judged; one that changed since is left to the next sweep.
  if (!dryRun && files) {
    const outcome = await removeListedFlatDir(target.fs, taken.at, files, walk.parentDev);
    if (outcome === 'changed') return false;
    if (outcome === 'removed') {
      tally.files += files.length;
      tally.dirs += 1;
      tally.bytes += entry.bytes;
      return true;
    }
  }
  // A data file the sweep did not take (or, in a dry run, would not) is a claimer's: one that a
  // listing missed (sshfs lists, then stats, and skips a name renamed in between) or that came
  // back since. It stays, and with it the entry, for the next sweep to judge.
  let spared = false;
  const spare = (name: string) => {
    const claimers = name !== taken.data && isDataFile(name);
    spared ||= claimers;
    return claimers;
  };
  // Walked by its name (O_NOFOLLOW at each step): a claimer's data file met there is spared.
  await walkTree(entry.path, { fs: target.fs, remove: !dryRun, ...walk, access: at, spare }, tally);
  return !spared;
}

/**
 * Takes an expired entry's data file from claimers (renamed to {@link TAKEN_FOR_REMOVAL}) before
 * anything is removed: a claim that won the race keeps its file, and the entry is left. The
 * returned listing names the file as it is now. Undefined when a claimer got there first.
 */
async function takeEntry(target: SweepTarget, found: FoundEntry): Promise<FoundEntry | undefined> {
  if (found.data === undefined) return found; // consumed: no file left to claim
  try {
    if (!(await takeForRemoval(target, found.access, found.data))) return undefined;
  } catch (err) {
    // An entry that denies the rename denies a claimer's too: no one can take the file from the
    // walk, which restores the entry's permissions and removes it. Any other failure (EMFILE,
    // EIO...) proves nothing: the file stays, with the entry, and the error is reported.
    if (isDenied(systemErrorCode(err))) return found;
    throw err;
  }
  const files = found.files?.map((name) => (name === found.data ? TAKEN_FOR_REMOVAL : name));
  return { ...found, files, data: TAKEN_FOR_REMOVAL };
}

function isDenied(code: string | undefined): boolean {
  return code === 'EACCES' || code === 'EPERM';
}

/** What every walk of one sweep shares: read once, not once per entry. */
interface WalkDefaults {
  readonly parentDev?: number;
}

async function walkDefaults(target: SweepTarget, rootBase: string): Promise<WalkDefaults> {
  try {
    return { parentDev: (await target.fs.promises.lstat(handoffDirOf(rootBase))).dev };
  } catch {
    return {};
  }
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
  const leftBefore = tally.left.length;
  if (session.hasDir) await walkTree(session.dir, { fs: target.fs, remove: !dryRun, onBatch, access: session.access }, tally);
  const whole = tally.errors.length === errorsBefore && tally.left.length === leftBefore;
  const removedHere = session.hasDir && whole && tally.dirs > dirsBefore;
  if (session.hasLock && !dryRun && whole) await removeLock(target, session, tally);
  return removedHere;
}

async function removeLock(target: SweepTarget, session: FoundSession, tally: WalkTally): Promise<void> {
  await walkTree(sessionLockPath(session.dir), { fs: target.fs, remove: true, access: sessionLockPath(session.access) }, { ...emptyTally(), errors: tally.errors, left: tally.left });
}
