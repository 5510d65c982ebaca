import { createHash } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AlreadyClaimedError,
  DisposedError,
  HandoffExpiredError,
  HandoffMismatchError,
  HandoffNotFoundError,
  isErrorCode,
  isTempFileError,
  LeaseLostError,
  StoreError,
  systemErrorCode,
  TempFileError,
  TempFileReplacedError,
  toFileSystemError,
} from '../base/errors.js';
import type { FileSystem } from '../disk/fs.js';
import { openHandoffDirSync } from './handoff.js';
import type { HandoffDirHold } from './handoff-dir.js';
import { dataName, entryName, handoffDirOf, heldName, holderOf, isHeldName, TAKEN_FOR_REMOVAL } from '../base/layout.js';
import { holdsHappen } from '../disk/holds.js';
import { isSmallOnDevice } from '../disk/local-disk.js';
import { unlinkAside, unlinkAsideSync } from '../disk/remove.js';
import { holderAlive, newOwnerToken, retryAfterMs, startLease, type Lease, type LeaseContext } from './lease.js';
import { readHeartbeat } from '../owner/heartbeat.js';
import type { Heartbeat } from '../owner/liveness.js';
import { openPinnedSync, type PinnedDirSync } from '../disk/pinned-dir.js';
import { moveFile, resolveDestination, resolveKeepOptions, type KeepOptions } from '../keep/move.js';
import { identityOf, ownFileStreamFs, replacedBy, type FileIdentity } from '../disk/open-checked.js';
import type { HandoffMeta, HandoffTicket } from './ticket.js';
import type { StoreClaim } from './store.js';
import { logger } from '../base/log.js';
import { ownOptions, validateBoolean, validateCallback, validateObject } from '../base/validators.js';

const log = logger('claim');

/** Options of `mgr.claim()`. */
export interface ClaimOptions {
  /** Re-hash the file and refuse it unless it matches the ticket's digest. @default false */
  readonly verifyDigest?: boolean;
}

const CLAIM_OPTIONS: ReadonlySet<string> = new Set(['verifyDigest']);

/** Checks the options of `claim()` before the ticket is read or anything is taken. @internal */
export function checkClaimOptions(options: unknown): ClaimOptions {
  validateObject(options, 'claim()', CLAIM_OPTIONS, '{ verifyDigest: true }');
  const own = ownOptions(options as ClaimOptions | undefined);
  return { verifyDigest: own.verifyDigest === undefined ? false : validateBoolean(own.verifyDigest, 'verifyDigest', { where: 'claim()' }) };
}

/**
 * A handoff entry as one claim sees it: its logical path, its pinned directory, and the pinned
 * handoff directory it was reached through (the entry is removed through it). @internal
 */
interface Entry {
  readonly id: string;
  readonly dir: string;
  readonly name: string;
  readonly pinned: PinnedDirSync;
  readonly handoff: PinnedDirSync & { readonly localDevice?: number | undefined };
  readonly fs: FileSystem;
}

/**
 * Takes the lease on a ticket's entry: exactly one claimer at a time. The size is always checked
 * against the ticket, the digest on request; an entry that fails the check is given back. The
 * ticket is one `parseTicket()` returned: its checks are made once, by the caller.
 * @internal
 */
export async function claimEntry(
  context: LeaseContext,
  root: string,
  ticket: HandoffTicket,
  claimOptions: ClaimOptions = {},
  rootBase = root,
  handoffDir?: HandoffDirHold,
): Promise<ClaimedFile> {
  const options = checkClaimOptions(claimOptions);
  if (Date.now() > ticket.expiresAt) throw new HandoffExpiredError(ticket.id, ticket.expiresAt);
  const name = entryName(ticket.id, ticket.expiresAt);
  const dir = path.join(handoffDirOf(root), name);
  const entry: Entry = { id: ticket.id, dir, name, ...pinEntry(context.fs, { root, rootBase, handoffDir }, name, ticket.id), fs: context.fs };
  const mine = heldName(newOwnerToken(context.hostId), ticket.suffix);
  try {
    takeEntry(context, entry, dataName(ticket.suffix), mine, ticket.suffix);
  } catch (err) {
    unpin(entry);
    throw err;
  }
  const held = { fs: context.fs, held: `${entry.pinned.base}/${mine}`, data: `${entry.pinned.base}/${dataName(ticket.suffix)}`, shown: path.join(dir, mine) };
  const lease = startLease(held);
  let identity: FileIdentity;
  try {
    identity = await verify(entry, mine, ticket, options);
  } catch (err) {
    giveBack(held, entry);
    lease.drop();
    unpin(entry);
    throw err;
  }
  return new ClaimedFile(entry, mine, ticket, lease, identity);
}

// The entry directory is pinned by a descriptor for the whole claim, reached through the pinned
// handoff directory, which stays pinned too: every step on the data file goes through the entry,
// and the entry's removal through the handoff directory, so swapping either path for a symlink
// cannot redirect them.
function pinEntry(
  fs: FileSystem,
  { root, rootBase, handoffDir }: { root: string; rootBase: string; handoffDir: HandoffDirHold | undefined },
  name: string,
  id: string,
): { pinned: PinnedDirSync; handoff: PinnedDirSync & { readonly localDevice?: number | undefined } } {
  const handoff = handoffDir ? handoffDir.acquire(root, rootBase) : openHandoffDirSync(fs, root, rootBase);
  if (!handoff) throw new HandoffNotFoundError(id);
  let pinned: ReturnType<typeof openPinnedSync>;
  try {
    pinned = openPinnedSync(fs, `${handoff.base}/${name}`);
  } catch (err) {
    handoff.close();
    throw toFileSystemError('find the handoff entry', path.join(handoffDirOf(root), name), err);
  }
  if (typeof pinned === 'string') {
    handoff.close();
    throw new HandoffNotFoundError(id);
  }
  return { pinned, handoff };
}

function unpin(entry: Entry): void {
  entry.pinned.close();
  entry.handoff.close();
}

/**
 * Renames the data file to `mine`: from `data<suffix>` when nobody holds it, else from a dead
 * holder's held name. Of several claimers renaming one name, exactly one succeeds; the others
 * find it gone and are turned away. A live holder's name is never touched.
 */
function takeEntry(context: LeaseContext, entry: Entry, data: string, mine: string, suffix: string): void {
  let current: string | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (renamedTo(entry, data, mine)) return;
    current = currentName(entry, data, suffix);
    // Not seen: consumed, or missed by a listing taken while it was renamed (sshfs lists, then
    // stats each name, and skips one renamed in between). Seen as data: given back meanwhile.
    if (current === undefined || current === data) continue;
    const heartbeat = holderHeartbeat(entry, current);
    if (heartbeat === 'gone') continue;
    if (holderAlive(context, holderOf(current)!, heartbeat)) throw new AlreadyClaimedError(entry.id, retryAfterMs(context));
    log('taking over %s from a dead holder', entry.dir);
    if (renamedTo(entry, current, mine)) return;
    break; // another claimer took it over first
  }
  if (current === undefined) throw new HandoffNotFoundError(entry.id);
  throw new AlreadyClaimedError(entry.id, 1000);
}

function renamedTo(entry: Entry, from: string, to: string): boolean {
  try {
    entry.fs.renameSync(`${entry.pinned.base}/${from}`, `${entry.pinned.base}/${to}`);
    return true;
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    throw toFileSystemError('claim the handoff entry', path.join(entry.dir, from), err);
  }
}

/** The data file's current name (`data<suffix>` or someone's held name), if there is one. */
function currentName(entry: Entry, data: string, suffix: string): string | undefined {
  let names: string[];
  try {
    names = entry.fs.readdirSync(entry.pinned.base) as string[];
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw toFileSystemError('read the handoff entry', entry.dir, err);
  }
  return names.includes(data) ? data : names.find((name) => isHeldName(name, suffix));
}

function holderHeartbeat(entry: Entry, name: string): Heartbeat | 'gone' {
  const stamp = readHeartbeat(entry.fs, `${entry.pinned.base}/${name}`);
  return stamp === 'missing' ? 'gone' : { key: path.join(entry.dir, name), stamp };
}

// The held file must be a regular file with one link (a hard link to a file outside the root, a
// FIFO or a device is refused as not the entry's file); its device and inode, recorded here, are
// what every later open of the claim checks.
async function verify(entry: Entry, name: string, ticket: HandoffTicket, options: ClaimOptions): Promise<FileIdentity> {
  const logical = path.join(entry.dir, name);
  const held = `${entry.pinned.base}/${name}`;
  let problem: string | undefined;
  let identity: FileIdentity;
  try {
    const stat = entry.fs.lstatSync(held);
    identity = identityOf(stat);
    const found = replacedBy(stat, undefined);
    problem =
      found !== undefined
        ? `not the handed-off file: ${found}`
        : stat.size !== ticket.size
          ? `${stat.size} bytes, the ticket says ${ticket.size}`
          : options.verifyDigest && ticket.digest && (await digestOf(entry.fs, held, logical, identity, ticket.digest)) !== ticket.digest
            ? 'the digest differs'
            : undefined;
  } catch (err) {
    if (isTempFileError(err)) throw err;
    throw toFileSystemError('verify the handoff entry', logical, err);
  }
  if (problem !== undefined) throw new HandoffMismatchError(ticket.id, problem);
  return identity;
}

async function digestOf(fs: FileSystem, filePath: string, shown: string, identity: FileIdentity, expected: string): Promise<string> {
  const algorithm = expected.slice(0, expected.indexOf(':'));
  const hash = createHash(algorithm);
  await pipeline(fs.createReadStream(filePath, { fs: ownFileStreamFs(fs, identity, shown, false) }), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

// A claim that failed its checks gives the file back under its data name: claimable until it
// expires, then swept. If even that fails, the holder (this process) is judged dead once it exits.
function giveBack(held: { fs: FileSystem; held: string; data: string }, entry: Entry): void {
  try {
    held.fs.renameSync(held.held, held.data);
  } catch (err) {
    log('could not give %s back: %s', entry.dir, systemErrorCode(err) ?? err);
  }
}

type ClaimState = 'held' | 'done' | 'lost';

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
  // A claim of a ticket that lives in an object store: every step is the store's (src/s3/), and
  // the disk fields below are never set nor read.
  private readonly remote: StoreClaim | undefined;
  private readonly entry!: Entry;
  // The held file and its data name through the pinned entry directory: what every step acts on.
  private readonly held!: string;
  private readonly data!: string;
  private readonly lease!: Lease;
  // The held file's device and inode when claimed: keep() moves only that file.
  private readonly identity!: FileIdentity;
  private state: ClaimState = 'held';

  /** @internal */
  constructor(entry: Entry, name: string, ticket: HandoffTicket, lease: Lease, identity: FileIdentity);
  /** @internal */
  constructor(remote: StoreClaim, ticket: HandoffTicket);
  constructor(first: Entry | StoreClaim, second: string | HandoffTicket, ticket?: HandoffTicket, lease?: Lease, identity?: FileIdentity) {
    if (typeof second !== 'string') {
      this.remote = first as StoreClaim;
      this.ticket = second;
      this.path = this.remote.path;
      return;
    }
    const entry = first as Entry;
    const name = second;
    this.remote = undefined;
    this.entry = entry;
    this.identity = identity!;
    this.path = path.join(entry.dir, name);
    this.held = `${entry.pinned.base}/${name}`;
    this.data = `${entry.pinned.base}/${dataName(ticket!.suffix)}`;
    this.ticket = ticket!;
    this.lease = lease!;
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
    if (this.remote) return this.remote.done;
    return this.state !== 'held';
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
  async consume(): Promise<void> {
    if (this.remote) return this.remote.consume();
    if (!this.begin()) return;
    try {
      if (!holdsHappen(this.entry.fs)) await this.unlinkHeld();
      else if ((await unlinkAside(this.entry.fs, this.held, this.path, this.takenName())) === 'gone') throw notThere(this.held);
    } catch (err) {
      throw this.failure(err, 'consume');
    }
    await this.finish(true);
  }

  /**
   * Synchronous {@link consume}.
   * @throws What {@link consume} throws; through an object store, always a {@link StoreError}
   * (`reason: 'sync'`): use `await consume()`.
   */
  consumeSync(): void {
    if (this.remote) throw syncInStore('consumeSync()', 'consume()');
    if (!this.begin()) return;
    try {
      if (!holdsHappen(this.entry.fs)) this.entry.fs.unlinkSync(this.held);
      else if (unlinkAsideSync(this.entry.fs, this.held, this.path, this.takenName()) === 'gone') throw notThere(this.held);
    } catch (err) {
      throw this.failure(err, 'consume');
    }
    this.finishSync(true);
  }

  /**
   * Gives the entry back unconsumed: the next claimer gets it at once, until its ticket expires.
   * Idempotent; does nothing once the claim was consumed or kept.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: another claimer took the entry over
   * (this one stalled past `staleMs`, or the held file was renamed): nothing was changed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the file could not be given back: still held.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: the object store could not record it: still held.
   */
  async release(): Promise<void> {
    if (this.remote) return this.remote.release();
    this.releaseSync();
  }

  /**
   * Synchronous {@link release} (one rename).
   * @throws What {@link release} throws; through an object store, always a {@link StoreError}
   * (`reason: 'sync'`): use `await release()`.
   */
  releaseSync(): void {
    if (this.remote) throw syncInStore('releaseSync()', 'release()');
    if (!this.begin()) return;
    try {
      this.entry.fs.renameSync(this.held, this.data);
    } catch (err) {
      throw this.failure(err, 'release');
    }
    this.finishSync(false);
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
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    const target = resolveDestination(destination);
    const keepOptions = resolveKeepOptions(options);
    if (this.remote) return this.remote.keep(target, keepOptions);
    if (!this.begin()) throw new DisposedError('ClaimedFile', this.path);
    try {
      await moveFile(this.entry.fs, this.held, target, keepOptions, this.path, this.identity);
    } catch (err) {
      throw this.failure(err, 'keep');
    }
    await this.finish(true);
    return target;
  }

  /** Same as {@link release} unless consumed, kept or released, or the lease was lost. @throws What {@link release} throws. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.remote) return this.remote.done ? Promise.resolve() : this.remote.release();
    return this.state === 'lost' ? Promise.resolve() : this.release();
  }

  /**
   * Same as {@link releaseSync}. Through an object store it cannot wait: the local copy goes at
   * once and the release is sent without waiting (lost, the lease goes stale).
   * @throws What {@link release} throws, but no {@link StoreError}.
   */
  [Symbol.dispose](): void {
    if (this.remote) return this.remote.releaseSync();
    if (this.state !== 'lost') this.releaseSync();
  }

  private begin(): boolean {
    if (this.state === 'lost') throw new LeaseLostError(this.ticket.id);
    if (this.state === 'done') return false;
    if (this.lease.lost) throw this.lost();
    return true;
  }

  /**
   * The error for a failed step. Our held name is gone only when another claimer took the entry
   * over (renamed the file to its own name): then it is theirs, whatever they did with it since,
   * and we touch nothing more. A step that found the name gone (ENOENT), or not the file claimed
   * any more (a `keep()` checks it right before it places the file, and takes the placed file
   * back when the name is gone after), is then a lost lease. Otherwise the claim stays held and
   * the step can be tried again.
   */
  private failure(err: unknown, action: string): TempFileError {
    const code = isErrorCode(err, 'ERR_TEMPFILE_IO') ? err.syscallCode : systemErrorCode(err);
    if ((code === 'ENOENT' || isErrorCode(err, 'ERR_TEMPFILE_REPLACED')) && !this.stillHeld()) return this.lost();
    if (isTempFileError(err) && !err.path?.startsWith(this.entry.pinned.base)) return err;
    return toFileSystemError(`${action} the handoff entry`, this.path, isTempFileError(err) ? (err.cause ?? err) : err);
  }

  /**
   * Where a consume first renames the held file where another handle may hold it (Windows): the
   * name a sweep takes an entry's data under, so that the lease's name is gone at once and the
   * entry counts as consumed; a sweep removes what the hold leaves.
   */
  private takenName(): string {
    return `${this.entry.pinned.base}/${TAKEN_FOR_REMOVAL}`;
  }

  // A small file on the handoff directory's own local device is unlinked inline: a few
  // microseconds, less than a trip to the thread pool (as a TempFile's removal).
  private async unlinkHeld(): Promise<void> {
    const { fs, handoff } = this.entry;
    if (handoff.localDevice !== undefined && isSmallOnDevice(fs, this.held, handoff.localDevice)) fs.unlinkSync(this.held);
    else await fs.promises.unlink(this.held);
  }

  private stillHeld(): boolean {
    try {
      this.entry.fs.lstatSync(this.held);
      return true;
    } catch (err) {
      return systemErrorCode(err) !== 'ENOENT';
    }
  }

  private lost(): LeaseLostError {
    this.state = 'lost';
    this.lease.drop();
    unpin(this.entry);
    return new LeaseLostError(this.ticket.id);
  }

  // Drops the lease, then removes the entry directory (when the data left it) through the pinned
  // handoff directory, off the event loop.
  private async finish(removeEntry: boolean): Promise<void> {
    this.close();
    try {
      if (removeEntry) await this.entry.fs.promises.rmdir(this.entryThroughHandoff()).catch(leaveToSweep);
    } finally {
      this.entry.handoff.close();
    }
  }

  private finishSync(removeEntry: boolean): void {
    this.close();
    try {
      if (removeEntry) this.entry.fs.rmdirSync(this.entryThroughHandoff());
    } catch (err) {
      leaveToSweep(err);
    } finally {
      this.entry.handoff.close();
    }
  }

  private entryThroughHandoff(): string {
    return `${this.entry.handoff.base}/${this.entry.name}`;
  }

  /** Ends the claim: the lease and the entry's pin. The handoff directory's pin is the caller's to close. */
  private close(): void {
    this.state = 'done';
    this.lease.drop();
    this.entry.pinned.close();
  }
}

/** A synchronous step on a claim whose lease lives in an object store: it would need the network. */
function syncInStore(call: string, instead: string): StoreError {
  return new StoreError('sync', `${call} cannot reach the object store this claim lives in: use \`await claimed.${instead}\` (or \`await using\`).`);
}

/** The held file was not at its name: as an unlink of it would have failed. */
function notThere(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file, '${file}'`), { code: 'ENOENT', path: file });
}

/** A consumed entry's directory that is not empty, or gone already: the sweep removes leftovers. */
function leaveToSweep(err: unknown): void {
  log('entry directory left to the sweep: %s', systemErrorCode(err) ?? err);
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
