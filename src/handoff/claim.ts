// The types are named by the steps' @throws: TSDoc links resolve through imports.
import { StoreError, type DisposedError, type LeaseLostError, type TempFileReplacedError } from '../base/errors.js';
import { resolveDestination, resolveKeepOptions, type KeepOptions } from '../keep/move.js';
import type { HandoffMeta, HandoffTicket } from './ticket.js';
import type { BackendClaim, CheckedClaimOptions, SyncSteps } from './backend.js';
import { ownOptions, validateBoolean, validateCallback, validateObject } from '../base/validators.js';

/** Options of `mgr.claim()`. */
export interface ClaimOptions {
  /** Re-hash the file and refuse it unless it matches the ticket's digest. @default false */
  readonly verifyDigest?: boolean;
}

const CLAIM_OPTIONS: ReadonlySet<string> = new Set(['verifyDigest']);

/** Checks the options of `claim()` before the ticket is read or anything is taken. @internal */
export function checkClaimOptions(options: unknown): CheckedClaimOptions {
  validateObject(options, 'claim()', CLAIM_OPTIONS, '{ verifyDigest: true }');
  const own = ownOptions(options as ClaimOptions | undefined);
  return { verifyDigest: own.verifyDigest === undefined ? false : validateBoolean(own.verifyDigest, 'verifyDigest', { where: 'claim()' }) };
}

/**
 * A claimed handoff entry, held under a lease. Nothing but an explicit step deletes the file:
 * `consume()` deletes it and the entry when the job is done, `keep()` moves it out. Disposing a
 * claim that was neither consumed, kept nor released RELEASES it, as `release()` does: the next
 * claimer gets it at once, so a job that throws inside `await using` is retried, never lost.
 * Each step acts on this claim's own name for the file: if another worker took the entry over
 * after this one stalled, that name is gone, and it throws {@link LeaseLostError} having changed
 * nothing.
 *
 * A ticket handed off through an object store (`tempfile-manager/s3`) is claimed the same way:
 * {@link ClaimedFile.path} is then a local copy in the claiming manager's scope, its lease lives in
 * the store, and each step is fenced by a conditional write of that lease (docs/s3.md).
 *
 * **Ownership:** the claim holds the lease (a heartbeat every second), and holds the entry
 * directory and `<root>/handoff` open (where there is /proc), until it is consumed, released or
 * kept. If the process exits normally while it holds the lease, the entry is given back; if it
 * is killed, the next claimer takes the entry over once the lease is stale.
 *
 * **Security:** {@link ClaimedFile.path} is the file's name under this claim: hand it to another
 * program only while the claim holds it. A process of this uid can rename the held file, which
 * the library cannot stop: every later step then throws {@link LeaseLostError} (docs/security.md,
 * the limits of "One claimer holds a lease at a time").
 *
 * @example
 * await using claimed = await mgr.claim(ticket);
 * await transcode(claimed.path);
 * await claimed.consume(); // without it, the disposal gives the entry back
 */
export class ClaimedFile implements AsyncDisposable, Disposable {
  /** The ticket this claim was made with. */
  readonly ticket: HandoffTicket;
  /** Where the bytes are while this claim holds them. */
  readonly path: string;
  // The backend's claim, which takes every step; `sync` is its synchronous steps, when it has them.
  private readonly claim: BackendClaim;
  private readonly sync: SyncSteps | undefined;

  /** @internal */
  constructor(claim: BackendClaim, ticket: HandoffTicket) {
    this.claim = claim;
    this.sync = claim.sync;
    this.ticket = ticket;
    this.path = claim.path;
  }

  /**
   * Size in bytes (checked against the file when claimed).
   * @throws Never. It reads the ticket; nothing is read from disk.
   */
  get size(): number {
    return this.ticket.size;
  }

  /**
   * The ticket's `meta`.
   * @throws Never. It reads the ticket.
   */
  get meta(): HandoffMeta | undefined {
    return this.ticket.meta;
  }

  /**
   * True once consumed, released or kept, or once the lease was found lost.
   * @throws Never. It reads the claim's state; the lease is not looked at.
   */
  get disposed(): boolean {
    return this.claim.done;
  }

  /**
   * Deletes the file and the entry, then drops the lease. Idempotent.
   *
   * **Ownership:** once it resolves the claim owns nothing, and the file and its entry are gone
   * (an entry directory that cannot be removed is left for the sweep). It does nothing once the
   * claim was consumed, released or kept: after a `release()` the file stays for the next
   * claimer.
   *
   * **Security:** the file is deleted by this claim's own name, through the entry directory held
   * open, and the entry through the handoff directory held open: never another claimer's file,
   * whatever `<root>/handoff` has become since (docs/security.md, "A process of the same uid,
   * point by point").
   *
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file): nothing was changed,
   * and the claim is over.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be deleted (EACCES,
   * EIO...): the claim stays held, to try again or release.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: (a ticket handed off through an object store)
   * the store could not record the step (unreachable within `timeoutMs`, credentials refused...;
   * `err.reason` says which, the message names the endpoint): the claim stays held, to try again.
   */
  consume(): Promise<void> {
    return this.claim.consume();
  }

  /**
   * Synchronous {@link consume}; it owns and deletes as {@link consume} does.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file): nothing was changed,
   * and the claim is over.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be deleted (EACCES,
   * EIO...): the claim stays held, to try again or release.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE` (`reason: 'sync'`): the claim lives in an
   * object store, which a synchronous call cannot reach: use `await consume()`.
   */
  consumeSync(): void {
    this.syncSteps('consumeSync()', 'consume()').consumeSync();
  }

  /**
   * Gives the entry back unconsumed: the next claimer gets it at once. Idempotent; does nothing
   * once the claim was consumed or kept.
   *
   * **Ownership:** once it resolves the claim owns nothing: the file is back under its data name
   * in the entry, claimable until its ticket expires, then swept.
   *
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file): nothing was changed,
   * and the claim is over.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back (EACCES,
   * EIO...): the claim stays held, to try again.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: (a ticket handed off through an object store)
   * the store could not record the step (unreachable within `timeoutMs`, credentials refused...;
   * `err.reason` says which, the message names the endpoint): the claim stays held, to try again.
   */
  release(): Promise<void> {
    return this.claim.release();
  }

  /**
   * Synchronous {@link release} (one rename); it owns and gives back as {@link release} does.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file): nothing was changed,
   * and the claim is over.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back (EACCES,
   * EIO...): the claim stays held, to try again.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE` (`reason: 'sync'`): the claim lives in an
   * object store, which a synchronous call cannot reach: use `await release()`.
   */
  releaseSync(): void {
    this.syncSteps('releaseSync()', 'release()').releaseSync();
  }

  /**
   * Moves the file out for good, then removes the entry; returns the absolute destination. As
   * `TempFile.keep()`, it never replaces anything at the destination unless `overwrite` is set.
   *
   * **Ownership:** once it resolves the file is the caller's, at the destination; the entry is
   * removed and the claim owns nothing. Any failure but a lost lease leaves the claim held, to
   * try again, release or consume.
   *
   * **Security:** as `TempFile.keep()`: nothing is opened for writing at the destination name,
   * and only the final name is never followed. The held name is checked again right before the
   * file takes the destination name (docs/security.md, "Threats, one by one": a stalled worker
   * whose lease was taken over).
   *
   * Every failure is a rejection.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `destination` is not a
   * non-empty path without NUL or names no file, or `options` is not `{ overwrite?: boolean }`.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the claim was consumed, released or
   * kept already.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another worker took the entry over:
   * checked when the step starts, right before the file takes its destination name, and when the
   * held file is removed after (a file placed by then is taken back). Nothing of this claim is
   * left at the destination.
   * @throws {@link DestinationExistsError} `ERR_TEMPFILE_DESTINATION_EXISTS`: without `overwrite`,
   * something else holds the destination name (a file, a symlink, a FIFO...).
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the held file is no longer the
   * file claimed (a hard link to another file, a FIFO...), or, across file systems, the staging or
   * the final name was changed by another process that can write to the destination's directory:
   * nothing is moved, the file stays held.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the destination's file system is full
   * (ENOSPC); nothing is left there.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota on the
   * destination's file system is exhausted (EDQUOT); nothing is left there.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure (the destination's
   * directory missing or not writable, EIO...).
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: (a ticket handed off through an object store)
   * the store could not record the keep: the file is taken back from the destination and the
   * entry given back for the next claimer.
   */
  keep(destination: string, options: KeepOptions = {}): Promise<string> {
    let target: string;
    let keepOptions: KeepOptions;
    try {
      target = resolveDestination(destination);
      keepOptions = resolveKeepOptions(options);
    } catch (err) {
      return Promise.reject(err as Error); // every failure is a rejection
    }
    return this.claim.keep(target, keepOptions);
  }

  /**
   * Same as {@link release}: an entry not consumed (or kept, or released) by now goes back for
   * the next claimer. After a lost lease was reported, does nothing.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file), and no earlier step
   * had reported it: nothing was changed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back (EACCES,
   * EIO...): the claim stays held, to try again.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.claim.dispose();
  }

  /**
   * Same as {@link releaseSync}, synchronously. After a lost lease was reported, does nothing.
   * A claim that lives in an object store cannot wait for the network: its local copy is removed
   * and its heartbeat stopped at once, and the release is sent without waiting (if it never
   * arrives, the next claimer takes the lease once it is stale).
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or a process renamed the held file), and no earlier step
   * had reported it: nothing was changed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back (EACCES,
   * EIO...): the claim stays held, to try again.
   */
  [Symbol.dispose](): void {
    this.claim.disposeSync();
  }

  /** The backend's synchronous steps; a backend without them (an object store: the network) is refused here. */
  private syncSteps(call: string, instead: string): SyncSteps {
    if (this.sync === undefined) throw syncUnsupported(call, instead);
    return this.sync;
  }
}

/** A synchronous step on a claim whose backend has none (an object store: it would need the network). */
function syncUnsupported(call: string, instead: string): StoreError {
  return new StoreError('sync', `${call} cannot reach the object store this claim lives in: use \`await claimed.${instead}\` (or \`await using\`).`);
}

/**
 * Claims, runs `fn` with the claim, then ends it: consumed when `fn` resolves, released when it
 * throws (so that the job's retry finds the entry at once). `fn`'s error is rethrown, with a
 * failed release attached to it as `releaseError` when it is an object that can take one. A
 * consume that fails after `fn` resolved releases the entry too, and rejects with the consume's
 * error. `fn` may end the claim itself (e.g. `keep()`): then nothing more is done.
 * @internal
 */
export async function runClaimed<T>(claim: () => Promise<ClaimedFile>, fn: (claimed: ClaimedFile) => T | PromiseLike<T>): Promise<T> {
  validateCallback(fn, 'withClaim()', '`async (claimed) => { ... }`'); // before the claim: a bad callback takes no lease
  const claimed = await claim();
  let result: T;
  try {
    result = await fn(claimed);
  } catch (error) {
    await claimed.release().catch((releaseError: unknown) => attachReleaseError(error, releaseError));
    throw error;
  }
  try {
    await claimed.consume();
  } catch (error) {
    // Still held (an EIO, say): give it back rather than hold it to the end of the process.
    if (!claimed.disposed) await claimed.release().catch((releaseError: unknown) => attachReleaseError(error, releaseError));
    throw error;
  }
  return result;
}

function attachReleaseError(error: unknown, releaseError: unknown): void {
  if (typeof error !== 'object' || error === null || !Object.isExtensible(error) || 'releaseError' in error) return;
  Object.defineProperty(error, 'releaseError', { value: releaseError, enumerable: false, configurable: true, writable: true });
}
