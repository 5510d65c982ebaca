// The types are named by the steps' @throws: TSDoc links resolve through imports.
import { StoreError, type LeaseLostError } from '../base/errors.js';
import { CHANNELS, handoffKey, publish } from '../base/channels.js';
import { resolveDestination, resolveKeepOptions, type KeepOptions } from '../keep/move.js';
import type { HandoffMeta, HandoffTicket } from './ticket.js';
import type { BackendClaim, CheckedClaimOptions, SyncSteps } from './backend.js';
import { ownOptions, validateBoolean, validateCallback, validateObject, type NoneLeftOut } from '../base/validators.js';

/** Options of `mgr.claim()`. */
export interface ClaimOptions {
  /** Re-hash the file and refuse it unless it matches the ticket's digest. @default false */
  readonly verifyDigest?: boolean;
}

/** The names of `claim()`'s options: every key of {@link ClaimOptions} (`NoneLeftOut`). */
const CLAIM_OPTION_KEYS = ['verifyDigest'] as const satisfies readonly (keyof ClaimOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type ClaimOptionsListed = NoneLeftOut<Exclude<keyof ClaimOptions, (typeof CLAIM_OPTION_KEYS)[number]>>;
const CLAIM_OPTIONS: ReadonlySet<string> = new Set<string>(CLAIM_OPTION_KEYS);

const NO_CLAIM_OPTIONS: CheckedClaimOptions = Object.freeze({ verifyDigest: false });

/** Checks the options of `claim()` before the ticket is read or anything is taken. @internal */
export function checkClaimOptions(options: unknown): CheckedClaimOptions {
  if (options === undefined) return NO_CLAIM_OPTIONS;
  validateObject(options, 'claim()', CLAIM_OPTIONS, '{ verifyDigest: true }');
  const own = ownOptions(options as ClaimOptions | undefined);
  return { verifyDigest: own.verifyDigest === undefined ? false : validateBoolean(own.verifyDigest, 'verifyDigest', { where: 'claim()' }) };
}

/**
 * A handoff entry claimed under a lease (a heartbeat every second). Nothing but an explicit step
 * deletes the file: `consume()` when the job is done, `keep()` to move it out. Disposing a claim
 * neither consumed, kept nor released RELEASES it, so a job that throws inside `await using` is
 * retried, never lost; so does a normal exit, and a killed claimer's lease goes stale. If another
 * worker took the entry over after this one stalled, each step throws {@link LeaseLostError}
 * having changed nothing. Through an object store, {@link ClaimedFile.path} is a local copy and
 * the lease lives in the store (docs/s3.md). Hand the path to another program only while the claim
 * holds it (docs/security.md).
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
  readonly #claim: BackendClaim;
  readonly #sync: SyncSteps | undefined;

  /** @internal */
  constructor(claim: BackendClaim, ticket: HandoffTicket) {
    this.#claim = claim;
    this.#sync = claim.sync;
    this.ticket = ticket;
    this.path = claim.path;
  }

  /** Size in bytes (checked against the file when claimed). @throws Never. */
  get size(): number {
    return this.ticket.size;
  }

  /** The ticket's `meta`. @throws Never. */
  get meta(): HandoffMeta | undefined {
    return this.ticket.meta;
  }

  /** True once consumed, released or kept, or the lease was found lost. @throws Never. */
  get disposed(): boolean {
    return this.#claim.done;
  }

  /**
   * Deletes the file and the entry by this claim's own name, through the directories held open
   * (never another claimer's file), then drops the lease. Idempotent; after `release()` or `keep()`
   * it does nothing.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or the held file was renamed): nothing was changed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be deleted: still held.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the object store could not record it: still held.
   */
  consume(): Promise<void> {
    return this.announce(CHANNELS.claimConsume, () => this.#claim.consume());
  }

  /**
   * Synchronous {@link consume}.
   * @throws What {@link consume} throws; through an object store, always a {@link StoreError}
   * (`reason: 'sync'`): use `await consume()`.
   */
  consumeSync(): void {
    this.#announceSync(CHANNELS.claimConsume, () => this.#syncSteps('consumeSync()', 'consume()').consumeSync());
  }

  /**
   * Gives the entry back unconsumed: the next claimer gets it at once, until its ticket expires.
   * Idempotent; does nothing once the claim was consumed or kept.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or the held file was renamed): nothing was changed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back: still held.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the object store could not record it: still held.
   */
  release(): Promise<void> {
    return this.announce(CHANNELS.claimRelease, () => this.#claim.release());
  }

  /**
   * Synchronous {@link release} (one rename).
   * @throws What {@link release} throws; through an object store, always a {@link StoreError}
   * (`reason: 'sync'`): use `await release()`.
   */
  releaseSync(): void {
    this.#announceSync(CHANNELS.claimRelease, () => this.#syncSteps('releaseSync()', 'release()').releaseSync());
  }

  /**
   * Moves the file out for good, as `TempFile.keep()` does (never replacing anything unless
   * `overwrite` is set), then removes the entry; returns the absolute destination. The lease is
   * checked again right before the file takes its name; any failure but a lost lease leaves the
   * claim held.
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: a bad `destination` or `options`.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the claim was consumed, released or kept.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or the held file was renamed): nothing of it is left at the
   * destination.
   * @throws {@link DestinationExistsError} `ERR_TEMPFILE_DESTINATION_EXISTS`: without `overwrite`,
   * something holds the destination name.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: the held file, or a name `keep()`
   * made, was changed by another process: nothing is moved.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`, {@link DiskQuotaError}
   * `ERR_TEMPFILE_DISK_QUOTA`, {@link FileSystemError} `ERR_TEMPFILE_IO`: the destination's file system
   * is full, over quota or failing; nothing is left there.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the object store could not record it: the file
   * is taken back and the entry given back.
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
    return this.#claim.keep(target, keepOptions).then((kept) => {
      publish(CHANNELS.fileKeep, () => ({ destination: kept, size: this.ticket.size, from: 'claim' }));
      return kept;
    });
  }

  /** Same as {@link release} unless consumed, kept or released, or the lease was lost. @throws What {@link release} throws. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.announce(CHANNELS.claimRelease, () => this.#claim.dispose());
  }

  /**
   * Same as {@link releaseSync}. Through an object store it cannot wait: the local copy goes at
   * once and the release is sent without waiting (lost, the lease goes stale).
   * @throws What {@link release} throws, but no {@link StoreError}.
   */
  [Symbol.dispose](): void {
    this.#announceSync(CHANNELS.claimRelease, () => this.#claim.disposeSync());
  }

  // Publishes on `channel` when `step` ended a claim that was live: a repeated or refused step says nothing.
  private async announce(channel: typeof CHANNELS.claimConsume | typeof CHANNELS.claimRelease, step: () => Promise<void>): Promise<void> {
    const live = !this.#claim.done;
    await step();
    if (live && this.#claim.done) publish(channel, () => ({ handoff: handoffKey(this.ticket.id), size: this.ticket.size }));
  }

  #announceSync(channel: typeof CHANNELS.claimConsume | typeof CHANNELS.claimRelease, step: () => void): void {
    const live = !this.#claim.done;
    step();
    if (live && this.#claim.done) publish(channel, () => ({ handoff: handoffKey(this.ticket.id), size: this.ticket.size }));
  }

  /** The backend's synchronous steps; a backend without them (an object store: the network) is refused here. */
  #syncSteps(call: string, instead: string): SyncSteps {
    if (this.#sync === undefined) throw syncUnsupported(call, instead);
    return this.#sync;
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
