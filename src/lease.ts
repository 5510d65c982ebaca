import path from 'node:path';
import lockfile from 'proper-lockfile';
import { AlreadyClaimedError, HandoffNotFoundError, systemErrorCode, toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';
import { processAlive } from './liveness.js';
import { lockFs } from './lock-fs.js';
import { logger } from './log.js';
import { randomName } from './names.js';
import { processIdentity } from './process-identity.js';
import { formatSessionName, ownerFromMatch, OWNER_TOKEN_PATTERN, type SessionName } from './session.js';

const log = logger('lease');

// proper-lockfile never takes a lease over by itself (stale: never): the holder's host and pid
// decide, or, for another host, how fresh the lock is (see holderAlive).
const NEVER_STALE = 2 ** 31 - 1;

/** Where and how leases are taken. @internal */
export interface LeaseContext {
  readonly fs: FileSystem;
  readonly staleMs: number;
  readonly hostId: string;
}

/** The lock directory of a handoff entry. */
export function leaseLockPath(entryDir: string): string {
  return path.join(entryDir, 'lock');
}

const HELD = new RegExp(`^held_${OWNER_TOKEN_PATTERN}`);
const HELD_EXACT = new RegExp(`^held_${OWNER_TOKEN_PATTERN}$`);

/** The name of the data file while `owner` holds it: the holder is fenced by this very name. */
export function heldName(owner: string, suffix: string): string {
  return `held_${owner}${suffix}`;
}

/** True when `fileName` is exactly a held data file of an entry with `suffix`. */
export function isHeldName(fileName: string, suffix: string): boolean {
  return fileName.endsWith(suffix) && HELD_EXACT.test(fileName.slice(0, fileName.length - suffix.length));
}

/** The holder encoded in a held file's name, or undefined for `data<suffix>`. */
export function holderOf(fileName: string): SessionName | undefined {
  return ownerFromMatch(HELD.exec(fileName));
}

/** A fresh owner token for one claim: this host, pid and start, now, and 64 random bits. */
export function newOwnerToken(hostId: string): string {
  return formatSessionName(processIdentity(hostId), Date.now(), randomName().slice(0, 16));
}

/**
 * Whether the lease on an entry is held by someone alive. On this host the holder's pid decides
 * (a dead holder loses it at once; a live one whose event loop is blocked keeps it); for another
 * host, or a holder not known yet, the lock's freshness decides.
 */
export function holderAlive(lease: LeaseContext, holder: SessionName | undefined, lockMtimeMs: number, now: number): boolean {
  if (holder && holder.host === lease.hostId) return processAlive(holder.pid, holder.start);
  return now - lockMtimeMs < lease.staleMs;
}

/** A held lease: release it once; `lost` turns true if proper-lockfile saw it taken over. */
export interface Lease {
  readonly lost: boolean;
  /** Drops the lease: removes its lock, off the event loop. Never throws; idempotent. */
  release(): Promise<void>;
  /** Synchronous {@link Lease.release}, for `using` and failure paths. */
  releaseSync(): void;
}

/**
 * Takes the lease on an entry: a proper-lockfile lock in the entry directory, refreshed while
 * this process lives. A lease whose holder is gone is taken over; a live holder's is not.
 * @throws {@link AlreadyClaimedError} with the time after which a retry may succeed.
 */
export async function acquireLease(
  lease: LeaseContext,
  entry: { readonly dir: string; readonly base: string },
  id: string,
  currentHolder: () => Promise<SessionName | undefined>,
): Promise<Lease> {
  const entryDir = entry.dir;
  const lockPath = leaseLockPath(entry.base);
  try {
    return await lockEntry(lease, entryDir, lockPath);
  } catch (err) {
    if (systemErrorCode(err) !== 'ELOCKED') throw lockFailure(err, entryDir, id);
  }
  const mtimeMs = lockMtime(lease.fs, lockPath);
  const now = Date.now();
  if (mtimeMs !== undefined && holderAlive(lease, await currentHolder(), mtimeMs, now)) {
    throw new AlreadyClaimedError(id, Math.max(1000, lease.staleMs - (now - mtimeMs)));
  }
  log('taking over the lease of %s', entryDir);
  try {
    lease.fs.rmdirSync(lockPath);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('take over the lease of', entryDir, err);
  }
  try {
    return await lockEntry(lease, entryDir, lockPath);
  } catch (err) {
    if (systemErrorCode(err) === 'ELOCKED') throw new AlreadyClaimedError(id, lease.staleMs);
    throw lockFailure(err, entryDir, id);
  }
}

// The entry can be consumed and removed by its holder between our look and our lock.
function lockFailure(err: unknown, entryDir: string, id: string): Error {
  if (systemErrorCode(err) === 'ENOENT') return new HandoffNotFoundError(id);
  return toFileSystemError('lock the handoff entry', entryDir, err);
}

// The lock lives in the entry directory, reached through its pinned descriptor when there is one.
async function lockEntry(lease: LeaseContext, entryDir: string, lockfilePath: string): Promise<Lease> {
  const state = { lost: false, released: false };
  const locking = lockFs(lease.fs);
  const options: lockfile.LockOptions = {
    lockfilePath,
    stale: NEVER_STALE,
    update: Math.max(1000, Math.floor(lease.staleMs / 2)),
    realpath: false,
    retries: 0,
    fs: locking.fs,
    onCompromised: (err) => {
      state.lost = true;
      log('lease of %s lost: %s', entryDir, err.message);
    },
  };
  try {
    await lockfile.lock(entryDir, options);
  } catch (err) {
    // Failed after our mkdir (probing the lock's mtime): the directory is ours to take back, while
    // the path still leads to it. proper-lockfile has started its own rmdir: wait for it, so that
    // it cannot remove the lock of whoever claims next, and remove the directory only if it failed.
    if (systemErrorCode(err) !== 'ELOCKED' && (err as { syscall?: string }).syscall !== 'mkdir') {
      if (!(await locking.removal(lockfilePath))) removeQuietly(lease.fs, lockfilePath);
    }
    throw err;
  }
  const unlockOptions: lockfile.UnlockOptions = { realpath: false, lockfilePath, fs: lease.fs };
  const releasing = (): boolean => {
    if (state.released || state.lost) return false;
    state.released = true;
    return true;
  };
  const logFailure = (err: unknown) => log('release of %s: %s', entryDir, systemErrorCode(err) ?? err);
  return {
    get lost() {
      return state.lost;
    },
    async release() {
      if (releasing()) await lockfile.unlock(entryDir, unlockOptions).catch(logFailure);
    },
    releaseSync() {
      if (!releasing()) return;
      try {
        lockfile.unlockSync(entryDir, unlockOptions);
      } catch (err) {
        logFailure(err);
      }
    },
  };
}

function removeQuietly(fs: FileSystem, lockPath: string): void {
  try {
    fs.rmdirSync(lockPath);
  } catch {
    // not there: nothing to take back
  }
}

function lockMtime(fs: FileSystem, lockPath: string): number | undefined {
  try {
    return fs.lstatSync(lockPath).mtimeMs;
  } catch {
    return undefined;
  }
}
