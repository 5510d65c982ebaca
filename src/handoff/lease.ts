import { constants } from 'node:fs';
import { onExit } from 'signal-exit';
import type { RootContext } from '../root.js';
import { systemErrorCode } from '../errors.js';
import type { FileSystem } from '../disk/fs.js';
import { HEARTBEAT_MS, judgeHeartbeat, ownerState } from '../lifetime/liveness.js';
import { logger } from '../log.js';
import { randomName } from '../names.js';
import { processIdentity } from '../owner/process-identity.js';
import { formatOwnerToken, TAKEN_FOR_REMOVAL, type OwnerToken } from '../layout.js';
import { openPinnedSync } from '../disk/pinned-dir.js';
import { OPEN_EXISTING, replacedBy } from '../disk/open-checked.js';

const log = logger('lease');

// A lease is the data file under a name of its holder's own (`heldName` in layout.ts). Taking
// it is one rename of the data file from the name it has now to ours: of several claimers renaming
// the same name, exactly one succeeds. The holder's heartbeat is that file's ctime, which the
// rename sets and which a chmod to the file's own mode refreshes: it moves with the file, so a
// claimer that takes the file over takes the heartbeat with it, and a stalled holder's next beat
// finds its name gone (see docs/handoff.md).

/** Where and how leases are taken. @internal */
export type LeaseContext = Pick<RootContext, 'fs' | 'staleMs' | 'graceMs' | 'hostId'>;

/** A fresh owner token for one claim: this host, pid and start, now, and 64 random bits. */
export function newOwnerToken(hostId: string): string {
  return formatOwnerToken({ ...processIdentity(hostId), created: Date.now(), random: randomName().slice(0, 16) });
}

/** What an observer read of a holder's heartbeat: the held file's ctime, if it could be read. */
export interface Heartbeat {
  /** The held file, by its logical path (never through a descriptor). */
  readonly path: string;
  /** Its ctime in epoch ms; undefined when it could not be read (EIO, EMFILE...). */
  readonly changedMs: number | undefined;
}

/**
 * Whether the holder of a lease is alive: the one place a lease decides it, by the rule of
 * `judgeOwner` (liveness.ts). A holder on this machine is judged by its thread in /proc: a dead
 * holder loses the lease at once, a live one whose event loop is blocked keeps it. Any other
 * holder is judged by its heartbeat, the held file's ctime, watched over this process's own
 * monotonic clock: dead once seen unchanged for `staleMs`, never by comparing the ctime with our
 * clock. A heartbeat that cannot be read, or was not watched long enough yet, counts as alive.
 */
export function holderAlive(lease: LeaseContext, holder: OwnerToken, heartbeat: Heartbeat, seen?: HolderStates): boolean {
  const key = `${holder.host}/${holder.pid}/${holder.thread ?? ''}/${holder.start}`;
  let state = seen?.get(key);
  if (state === undefined) {
    state = ownerState(holder, lease.hostId);
    seen?.set(key, state);
  }
  if (state !== 'unknown') return state === 'alive';
  const rules = { staleMs: lease.staleMs, graceMs: 0, hostId: lease.hostId };
  return judgeHeartbeat({ key: heartbeat.path, stamp: heartbeat.changedMs ?? 'unreadable' }, rules) !== 'dead';
}

/**
 * What the kernel said of the holders met in one scan, by process: many entries may name the same
 * crashed worker. A process judged dead stays dead; one judged alive is kept for the scan.
 */
export type HolderStates = Map<string, 'alive' | 'dead' | 'unknown'>;

/**
 * Takes an entry's data file away from claimers before the entry is removed, as a claim takes
 * it: one rename, from the name it was seen under to {@link TAKEN_FOR_REMOVAL}. Of a sweeper and
 * claimers renaming the same name, exactly one succeeds. `entry` is the entry as the scan that
 * judged it holds it (its descriptor's `/proc` path): the rename lands in the directory judged.
 * True when taken; false when the name was gone (someone took the file meanwhile): then nothing
 * was changed.
 */
export async function takeForRemoval(lease: LeaseContext, entry: string, current: string): Promise<boolean> {
  try {
    await lease.fs.promises.rename(`${entry}/${current}`, `${entry}/${TAKEN_FOR_REMOVAL}`);
    return true;
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** When a claimer turned away by a live holder may try again: a heartbeat needs `staleMs` of watching. */
export function retryAfterMs(lease: LeaseContext): number {
  return Math.max(1000, lease.staleMs);
}

/** A held lease: its heartbeat, and the give-back of its file if the process exits holding it. */
export interface Lease {
  /** True once a heartbeat found the held name gone: another claimer took the entry over. */
  readonly lost: boolean;
  /** Stops the heartbeat and the give-back at exit. Idempotent. */
  drop(): void;
}

/** The held file and the name to give it back under, both through the pinned entry directory. */
export interface HeldFile {
  readonly fs: FileSystem;
  readonly held: string;
  readonly data: string;
}

const heldAtExit = new Set<HeldFile>();
let exitHandlerInstalled = false;

/**
 * Starts the lease on a file just renamed to its held name: a heartbeat every
 * {@link HEARTBEAT_MS} (the first one only then: the rename itself was the first), and, if the
 * process exits normally still holding it, the file goes back to its data name for the next
 * claimer. A process killed outright leaves the held name; its holder is then judged dead.
 */
export function startLease(file: HeldFile): Lease {
  const state = { lost: false, dropped: false };
  const timer = setInterval(() => beat(file, state, timer), HEARTBEAT_MS);
  timer.unref();
  heldAtExit.add(file);
  installExitHandler();
  return {
    get lost() {
      return state.lost;
    },
    drop() {
      if (state.dropped) return;
      state.dropped = true;
      clearInterval(timer);
      heldAtExit.delete(file);
    },
  };
}

// A chmod to the file's own mode changes nothing but the ctime, which is the heartbeat. The file
// is opened through the pinned entry without following a link (and without blocking on a FIFO)
// and changed through its descriptor: a symlink planted at the held name never has its target
// touched, nor is a file of which the held name is a hard link. Once the file was taken over,
// the name is gone and the beat says so.
const BEAT_OPEN = constants.O_RDONLY | OPEN_EXISTING;

function closeQuietly(fs: FileSystem, fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to do: the beat is over either way
  }
}

function beat(file: HeldFile, state: { lost: boolean; dropped: boolean }, timer: NodeJS.Timeout): void {
  let fd: number | undefined;
  try {
    fd = file.fs.openSync(file.held, BEAT_OPEN);
    const stat = file.fs.fstatSync(fd);
    if (replacedBy(stat, undefined) === undefined) file.fs.fchmodSync(fd, stat.mode & 0o7777);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') {
      log('heartbeat of %s: %s', file.held, systemErrorCode(err) ?? err);
      return;
    }
    log('lease of %s lost: taken over', file.held);
    state.lost = true;
    clearInterval(timer);
    heldAtExit.delete(file);
  } finally {
    if (fd !== undefined) closeQuietly(file.fs, fd);
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  onExit(() => {
    for (const file of heldAtExit) {
      try {
        file.fs.renameSync(file.held, file.data);
      } catch {
        // taken over, or the disk is gone: the next claimer judges the holder dead either way
      }
    }
    heldAtExit.clear();
  });
}
