import { removeDeadSignal } from '../owner/live-signal.js';
import type { StoreSweepResult } from '../base/stores.js';
import { traced, TRACING_CHANNELS, type SweepTrace } from '../base/channels.js';
import type { RootContext } from '../root/root.js';
import { toFileSystemError, UnsafeRootError } from '../base/errors.js';
import { openPinned } from '../disk/pinned-dir.js';
import { checkExistingRoot, requireMarkedRoot } from '../root/root.js';
import { ownOptions, validateBoolean, validateFunction, validateObject, type NoneLeftOut } from '../base/validators.js';
import { logger } from '../base/log.js';
import { emptyTally, type LeftPath, type PathError, type WalkTally } from '../disk/walk.js';
import { isLocalDisk } from '../disk/local-disk.js';
import { findSessions, sweepSessions, sweepSetAside, type FoundSession } from '../lifetime/session-sweep.js';
import { sweepHandoff } from '../handoff/sweep.js';
import { sweepTusUploads } from '../lifetime/tus-sweep.js';

const log = logger('sweep');

// The sweep of a root: a thin layer over the two concepts that sweep their own files, the
// sessions (lifetime/session-sweep.ts) and the handoff entries (handoff/sweep.ts), through one
// descriptor of the root.

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
  /** Sessions of another machine left alone: watched for less than `graceMs` yet. */
  readonly youngSessionsSkipped: number;
  /** Sessions of another machine whose lock was not watched for `staleMs` yet: judged at a later sweep. */
  readonly unjudgedSessionsSkipped: number;
  /** Other host ids of sessions made on this machine: `hostId` set differently in the app and the sweeper. */
  readonly hostIdMismatches: readonly string[];
  /** Closed sessions set aside while another handle held a file in them (Windows), removed now. */
  readonly setAsideRemoved: number;
  /** Handoff entries removed: expired unclaimed ones, leftovers of consumed ones, and staging leftovers. */
  readonly handoffEntriesRemoved: number;
  /** Handoff entries left alone because a live claimer holds their lease. */
  readonly claimedEntriesSkipped: number;
  /** Uploads of `tempfile-manager/tus` (under `<root>/tus`) removed: unfinished past the expiry recorded when each was made. */
  readonly tusUploadsRemoved: number;
  /** Expired uploads of `tempfile-manager/tus` left alone because a live request still writes them. */
  readonly heldTusUploadsSkipped: number;
  /** Paths under the root whose names are not the library's: never removed. */
  readonly foreign: readonly string[];
  /** Each of the manager's `stores`, swept through its client (not in a dry run; not by the CLI). */
  readonly stores?: readonly StoreSweepResult[];
  /** What could not be removed, each with its path and system error code. */
  readonly errors: readonly PathError[];
  /** What was left on purpose (a mount point): not an error; unmount it, and the next sweep removes it. */
  readonly left: readonly LeftPath[];
  /** How long the sweep took. */
  readonly durationMs: number;
}

/** The names of `sweep()`'s options: every key of {@link SweepOptions} (`NoneLeftOut`). */
const SWEEP_OPTION_KEYS = ['dryRun', 'onProgress'] as const satisfies readonly (keyof SweepOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type SweepOptionsListed = NoneLeftOut<Exclude<keyof SweepOptions, (typeof SWEEP_OPTION_KEYS)[number]>>;
const SWEEP_OPTIONS: ReadonlySet<string> = new Set<string>(SWEEP_OPTION_KEYS);

/** Checks the options of `sweep()` before anything is read. */
function resolveSweepOptions(given: unknown): { readonly dryRun: boolean; readonly onProgress?: (progress: SweepProgress) => void } {
  validateObject(given, 'sweep()', SWEEP_OPTIONS, '{ dryRun: true }');
  const own = ownOptions(given as SweepOptions | undefined);
  const dryRun = own.dryRun === undefined ? false : validateBoolean(own.dryRun, 'dryRun', { where: 'sweep()' });
  if (own.onProgress === undefined) return { dryRun };
  return { dryRun, onProgress: validateFunction<(progress: SweepProgress) => void>(own.onProgress, 'onProgress', 'such as (p) => console.log(p.filesRemoved)', { where: 'sweep()' }) };
}

/**
 * Removes what dead processes left under the root: orphaned sessions with all their files, and
 * locks without a session; then expired and consumed handoff entries, and tus uploads past their
 * recorded expiry. Never a live or young session, never an entry under a live lease nor an upload
 * a live request holds, never outside the root, never through a symlink. Safe to run from several
 * processes at once. `only` limits it to some sessions (and leaves the handoff and tus directories
 * alone).
 */
export async function sweepRoot(
  target: RootContext,
  sweepOptions: SweepOptions = {},
  only?: (session: FoundSession) => boolean,
): Promise<SweepReport> {
  const options = resolveSweepOptions(sweepOptions);
  const started = Date.now();
  const { dryRun } = options;
  const pinnedRoot = await pinRoot(target);
  try {
    return await traced(
      TRACING_CHANNELS.sweep,
      () => ({ root: target.root, dryRun }),
      () => sweepPinned(target, pinnedRoot.base, { options, dryRun, started }, only),
      sweepSummary,
    );
  } finally {
    await pinnedRoot.close();
  }
}

/** What `tracing:tempfile-manager:sweep` says of a report: counts, never the paths. */
function sweepSummary(report: SweepReport): NonNullable<SweepTrace['result']> {
  const { sessionsRemoved, filesRemoved, dirsRemoved, bytesFreed, handoffEntriesRemoved } = report;
  return { sessionsRemoved, filesRemoved, dirsRemoved, bytesFreed, handoffEntriesRemoved, errors: report.errors.length };
}

/**
 * The root as one sweep reaches it: the manager's own descriptor, checked against the root it
 * was made with, or one opened here without following a link (the CLI). A root swapped for a
 * symlink during the sweep then changes nothing: every session, lock and entry is reached
 * through it, and only reported by its path.
 */
async function pinRoot(target: RootContext): Promise<{ base: string; close(): Promise<void> }> {
  target.verifyRoot?.();
  if (target.rootBase) return { base: target.rootBase(), close: async () => {} };
  let pinned: Awaited<ReturnType<typeof openPinned>>;
  try {
    pinned = await openPinned(target.root);
  } catch (err) {
    throw toFileSystemError('open the root', target.root, err);
  }
  if (pinned === 'gone') requireMarkedRoot(target.root); // throws: no marker, no root
  if (pinned === 'not-a-dir') checkExistingRoot(target.root); // throws: a symlink, or not a directory
  if (typeof pinned === 'string') throw new UnsafeRootError('not-a-directory', target.root, `The root ${target.root} cannot be opened as a directory: check the path.`);
  return pinned;
}

async function sweepPinned(
  target: RootContext,
  rootBase: string,
  run: { readonly options: SweepOptions; readonly dryRun: boolean; readonly started: number },
  only: ((session: FoundSession) => boolean) | undefined,
): Promise<SweepReport> {
  const { options, dryRun, started } = run;
  const tally = emptyTally();
  requireMarkedRoot(target.root, rootBase);
  const top = await findSessions(target, rootBase);
  const { onProgress } = options;
  const sessions = await sweepSessions(target, only ? top.sessions.filter(only) : top.sessions, {
    dryRun,
    tally,
    inline: isLocalDisk(rootBase),
    ...(onProgress && {
      onProgress: (t: WalkTally, sessionsDone: number, sessionsTotal: number) =>
        onProgress({ filesRemoved: t.files, bytesFreed: t.bytes, sessionsDone, sessionsTotal }),
    }),
  });
  const setAsideRemoved = only ? 0 : await sweepSetAside(target, rootBase, top.setAside, { dryRun, tally });
  // A live signal nobody holds is a dead thread's: the FIFO alone, no file of the user's.
  if (!only && !dryRun) for (const name of top.liveSignals) removeDeadSignal(rootBase, name);
  const handoff = only ? { removed: 0, claimed: 0, foreign: [] } : await sweepHandoff(target, rootBase, dryRun, tally);
  const tus = only ? { removed: 0, held: 0, foreign: [] } : await sweepTusUploads(target, rootBase, dryRun, tally);
  const report: SweepReport = {
    root: target.root,
    dryRun,
    sessionsRemoved: sessions.removed,
    filesRemoved: tally.files,
    dirsRemoved: tally.dirs,
    bytesFreed: tally.bytes,
    liveSessionsSkipped: sessions.skipped.alive,
    youngSessionsSkipped: sessions.skipped.young,
    unjudgedSessionsSkipped: sessions.skipped.unjudged,
    hostIdMismatches: sessions.hostIdMismatches,
    setAsideRemoved,
    handoffEntriesRemoved: handoff.removed,
    claimedEntriesSkipped: handoff.claimed,
    tusUploadsRemoved: tus.removed,
    heldTusUploadsSkipped: tus.held,
    foreign: [...top.foreign, ...handoff.foreign, ...tus.foreign],
    errors: tally.errors,
    left: tally.left,
    durationMs: Date.now() - started,
  };
  log('swept %s: %o', target.root, { ...report, errors: report.errors.length });
  return report;
}
