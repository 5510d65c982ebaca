import { builtin } from '../base/builtin.js';
import type { Stats } from 'node:fs';
import {
  AlreadyClaimedError,
  DisposedError,
  HandoffMismatchError,
  HandoffNotFoundError,
  isErrorCode,
  isTempFileError,
  LeaseLostError,
  systemErrorCode,
  TempFileError,
  toFileSystemError,
} from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { openHandoffDirSync } from './handoff.js';
import type { HandoffDirHold, HandoffDirUse } from './handoff-dir.js';
import { dataName, entryName, entryPrefix, heldName, TAKEN_FOR_REMOVAL } from '../base/layout.js';
import { boundEntryName } from './binding.js';
import { holdsHappen } from '../disk/holds.js';
import { INLINE_IO_MAX_BYTES } from '../disk/local-disk.js';
import { unlinkAside, unlinkAsideSync } from '../disk/remove.js';
import { newOwnerToken, retryAfterMs, startLease, tryTakeLease, type HeldFile, type Lease, type LeaseAttempt, type LeaseContext } from './lease.js';
import { openPinnedSync, type PinnedDirSync } from '../disk/pinned-dir.js';
import { moveFile, type KeepOptions } from '../keep/move.js';
import { identityOf, ownFileStreamFs, replacedBy, type FileIdentity } from '../disk/open-checked.js';
import type { HandoffTicket } from './ticket.js';
import type { BackendClaim, CheckedClaimOptions, SyncSteps } from './backend.js';
import { logger } from '../base/log.js';
import { CHANNELS, handoffKey, publish } from '../base/channels.js';
const path = builtin('node:path');

const log = logger('claim');

// A claim of an entry of <root>/handoff: the lease is the data file under a name of this claim's
// own (lease.ts), and every step acts on that name, through the entry directory held open.

/** The handoff directory a claim reached its entry through: what its hold knew of it, if it was held. */
type EntryHandoff = PinnedDirSync & Partial<Pick<HandoffDirUse, 'localDevice' | 'inMemory'>>;

/**
 * A handoff entry as one claim sees it: its logical path, its pinned directory, and the pinned
 * handoff directory it was reached through (the entry is removed through it). @internal
 */
interface Entry {
  readonly id: string;
  readonly dir: string;
  readonly name: string;
  readonly pinned: PinnedDirSync;
  readonly handoff: EntryHandoff;
}

/** Where a claim finds its entry. @internal */
export interface ClaimPlaces {
  readonly root: string;
  /** How the root's entries are reached (its descriptor's /proc path, or its checked path). */
  readonly rootBase: string;
  /** `<root>/handoff`, the directory the claim's paths are shown under. */
  readonly handoffPath: string;
  /** The handoff directory held across calls, when the caller keeps one. */
  readonly handoffDir: HandoffDirHold | undefined;
}

/**
 * Takes the lease on a ticket's entry: exactly one claimer at a time. The size is always checked
 * against the ticket, the digest on request; an entry that fails the check is given back. The
 * ticket is one `parseTicket()` returned, not expired, and the options are checked: all once, by
 * the caller (`mgr.claim()`).
 * @internal
 */
export async function claimEntry(context: LeaseContext, places: ClaimPlaces, ticket: HandoffTicket, options: CheckedClaimOptions): Promise<DiskClaim> {
  const bound = boundEntryName(ticket);
  try {
    return await claimBound(context, places, ticket, options, bound);
  } catch (err) {
    throw redacted(err, bound, ticket.id);
  }
}

async function claimBound(context: LeaseContext, places: ClaimPlaces, ticket: HandoffTicket, options: CheckedClaimOptions, bound: string): Promise<DiskClaim> {
  // Before the entry is taken: nothing to give back if it fails.
  context.holdLive?.();
  const { pinned, handoff, name } = await pinEntry(places, bound, ticket);
  // Plain concatenation, as path.join would give: the names are the library's own, one component each.
  const dir = places.handoffPath + path.sep + name;
  const entry: Entry = { id: ticket.id, dir, name, pinned, handoff };
  const mine = heldName(newOwnerToken(context.hostId), ticket.suffix);
  const data = dataName(ticket.suffix);
  try {
    takeEntry(context, entry, data, mine, ticket.suffix);
  } catch (err) {
    unpin(entry);
    throw err;
  }
  const held: HeldFile = { held: `${pinned.base}/${mine}`, data: `${pinned.base}/${data}`, shown: dir + path.sep + mine };
  const lease = startLease(held);
  let identity: FileIdentity;
  try {
    identity = checkHeld(held, ticket);
    lease.identify(identity);
    if (options.verifyDigest && ticket.digest) await checkDigest(held, ticket.id, ticket.digest, identity);
  } catch (err) {
    giveBack(lease, entry);
    lease.drop();
    unpin(entry);
    throw err;
  }
  return new DiskClaim(entry, held, ticket, lease, identity);
}

// The entry directory is pinned by a descriptor for the whole claim, reached through the pinned
// handoff directory, which stays pinned too: every step on the data file goes through the entry,
// and the entry's removal through the handoff directory, so swapping either path for a symlink
// cannot redirect them.
async function pinEntry(
  { root, rootBase, handoffDir, handoffPath }: ClaimPlaces,
  bound: string,
  ticket: HandoffTicket,
): Promise<{ pinned: PinnedDirSync; handoff: EntryHandoff; name: string }> {
  const handoff = handoffDir ? handoffDir.acquire(root, rootBase) : openHandoffDirSync(root, rootBase);
  if (!handoff) throw new HandoffNotFoundError(ticket.id);
  let name = bound;
  try {
    let pinned = openPinnedSync(`${handoff.base}/${name}`);
    if (pinned === 'gone') {
      name = await unboundEntry(handoff.base, ticket, bound);
      pinned = openPinnedSync(`${handoff.base}/${name}`);
    }
    if (typeof pinned === 'string') throw new HandoffNotFoundError(ticket.id);
    return { pinned, handoff, name };
  } catch (err) {
    handoff.close();
    throw isTempFileError(err) ? err : toFileSystemError('find the handoff entry', shownEntry(handoffPath + path.sep + name, ticket.id), err);
  }
}

/**
 * No entry is bound to the ticket. An entry named without a binding was handed off by an earlier
 * version: its name (one lstat), to be claimed. Else the handoff directory is read in the thread
 * pool, off the event loop (a failure's cost, not a claim's; a claim of a consumed or unknown
 * ticket pays it): an entry of the ticket's id under another binding means the ticket was edited,
 * refused as a store refuses it.
 */
async function unboundEntry(handoffBase: string, ticket: HandoffTicket, bound: string): Promise<string> {
  const unbound = entryName(ticket.id, ticket.expiresAt);
  if (fs.lstatSync(`${handoffBase}/${unbound}`, { throwIfNoEntry: false })?.isDirectory()) return unbound;
  const prefix = entryPrefix(ticket.id);
  // The bound entry listed after all: it went and came back (a claimer's rename), or the open failed.
  const edited = (await fs.promises.readdir(handoffBase)).some((name) => name.startsWith(prefix) && name !== bound);
  if (edited) throw new HandoffMismatchError(ticket.id, 'the ticket differs from the one the handoff holds');
  throw new HandoffNotFoundError(ticket.id);
}

function unpin(entry: Entry): void {
  entry.pinned.close();
  entry.handoff.close();
}

/**
 * Renames the data file to `mine`: from `data<suffix>` when nobody holds it, else from a dead
 * holder's held name (`tryTakeLease`, the one step of every lease). Of several claimers renaming
 * one name, exactly one succeeds; the others are turned away. A live holder's name is never touched.
 */
function takeEntry(context: LeaseContext, entry: Entry, data: string, mine: string, suffix: string): void {
  let last: LeaseAttempt = 'gone';
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      last = tryTakeLease(context, entry.pinned.base, entry.dir, data, mine, suffix);
    } catch (err) {
      throw toFileSystemError('claim the handoff entry', shownEntry(entry.dir, entry.id), err);
    }
    if (last === 'taken') return;
    if (last === 'taken-over') return publish(CHANNELS.claimTakeover, () => ({ handoff: handoffKey(entry.id) }));
    if (last === 'live') throw new AlreadyClaimedError(entry.id, retryAfterMs(context));
    // 'gone' (consumed, or missed by a listing taken while it was renamed) or 'moved': look again.
  }
  if (last === 'gone') throw new HandoffNotFoundError(entry.id);
  throw new AlreadyClaimedError(entry.id, 1000);
}

// The held file must be a regular file with one link (a hard link to a file outside the root, a
// FIFO or a device is refused as not the entry's file), of the ticket's size; its device and
// inode, returned here, are what every later open of the claim checks.
function checkHeld(held: HeldFile, ticket: HandoffTicket): FileIdentity {
  let stat: Stats;
  try {
    stat = fs.lstatSync(held.held);
  } catch (err) {
    throw toFileSystemError('verify the handoff entry', shownEntry(held.shown, ticket.id), err);
  }
  const found = replacedBy(stat, undefined);
  if (found !== undefined) throw new HandoffMismatchError(ticket.id, `not the handed-off file: ${found}`);
  if (stat.size !== ticket.size) throw new HandoffMismatchError(ticket.id, `${stat.size} bytes, the ticket says ${ticket.size}`);
  return identityOf(stat);
}

// On request (`verifyDigest`), the held file is read through checked opens and hashed.
async function checkDigest(held: HeldFile, id: string, expected: string, identity: FileIdentity): Promise<void> {
  let digest: string;
  try {
    digest = await digestOf(held.held, shownEntry(held.shown, id), identity, expected);
  } catch (err) {
    if (isTempFileError(err)) throw err;
    throw toFileSystemError('verify the handoff entry', shownEntry(held.shown, id), err);
  }
  if (digest !== expected) throw new HandoffMismatchError(id, 'the digest differs');
}

async function digestOf(filePath: string, shown: string, identity: FileIdentity, expected: string): Promise<string> {
  const algorithm = expected.slice(0, expected.indexOf(':'));
  const hash = builtin('node:crypto').createHash(algorithm);
  await builtin('node:stream/promises').pipeline(fs.createReadStream(filePath, { fs: ownFileStreamFs(identity, shown, false) }), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

// A claim that failed its checks gives the file back under its data name: claimable until it
// expires, then swept. If even that fails, the holder (this process) is judged dead once it exits.
function giveBack(lease: Lease, entry: Entry): void {
  try {
    lease.giveBack();
  } catch (err) {
    log('could not give %s back: %s', shownEntry(entry.dir, entry.id), systemErrorCode(err) ?? err);
  }
}

type ClaimState = 'held' | 'done' | 'lost';

/**
 * The steps of a claim of a shared-disk entry (`ClaimedFile` forwards to them): each acts on this
 * claim's own name for the file, so that a holder taken over finds it gone and changes nothing.
 * Every step can be taken synchronously too. @internal
 */
export class DiskClaim implements BackendClaim, SyncSteps {
  readonly path: string;
  readonly sync: SyncSteps = this;
  private readonly ticket: HandoffTicket;
  private readonly entry: Entry;
  // The held file through the pinned entry directory: what every step acts on.
  private readonly held: string;
  private readonly lease: Lease;
  // The held file's device and inode when claimed: keep() moves only that file.
  private readonly identity: FileIdentity;
  private state: ClaimState = 'held';

  constructor(entry: Entry, held: HeldFile, ticket: HandoffTicket, lease: Lease, identity: FileIdentity) {
    this.entry = entry;
    this.identity = identity;
    this.path = held.shown;
    this.held = held.held;
    this.ticket = ticket;
    this.lease = lease;
  }

  get done(): boolean {
    return this.state !== 'held';
  }

  async consume(): Promise<void> {
    if (!this.begin()) return;
    this.lease.settling(true);
    try {
      if (holdsHappen()) {
        if ((await unlinkAside(this.held, this.path, this.takenName())) === 'gone') throw notThere(this.held);
      } else if (this.smallOnLocalDisk()) fs.unlinkSync(this.held);
      else await fs.promises.unlink(this.held);
    } catch (err) {
      this.lease.settling(false);
      throw this.failure(err, 'consume');
    }
    await this.finish(true);
  }

  consumeSync(): void {
    if (!this.begin()) return;
    try {
      if (!holdsHappen()) fs.unlinkSync(this.held);
      else if (unlinkAsideSync(this.held, this.path, this.takenName()) === 'gone') throw notThere(this.held);
    } catch (err) {
      throw this.failure(err, 'consume');
    }
    this.finishSync(true);
  }

  async release(): Promise<void> {
    this.releaseSync();
  }

  // One rename: the file back under its data name, for the next claimer.
  releaseSync(): void {
    if (!this.begin()) return;
    try {
      this.lease.giveBack();
    } catch (err) {
      throw this.failure(err, 'release');
    }
    this.finishSync(false);
  }

  async keep(target: string, keepOptions: KeepOptions): Promise<string> {
    if (!this.begin()) throw new DisposedError('ClaimedFile', shownEntry(this.path, this.ticket.id));
    this.lease.settling(true);
    try {
      await moveFile(this.held, target, keepOptions, shownEntry(this.path, this.ticket.id), this.identity);
    } catch (err) {
      this.lease.settling(false);
      throw this.failure(err, 'keep');
    }
    await this.finish(true);
    return target;
  }

  // After a lost lease was reported, the end of the claim does nothing.
  dispose(): Promise<void> {
    return this.state === 'lost' ? Promise.resolve() : this.release();
  }

  disposeSync(): void {
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
    const typed =
      isTempFileError(err) && !err.path?.startsWith(this.entry.pinned.base)
        ? err
        : toFileSystemError(`${action} the handoff entry`, shownEntry(this.path, this.ticket.id), isTempFileError(err) ? (err.cause ?? err) : err);
    return redacted(typed, this.entry.name, this.ticket.id);
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
  // microseconds, less than a trip to the thread pool (as a TempFile's removal). Small and where
  // it is as the claim's lstat found it: the claimed file is the job's input, not written to, and
  // a file grown since costs one longer unlink, never a wrong one.
  private smallOnLocalDisk(): boolean {
    const device = this.entry.handoff.localDevice;
    return device !== undefined && this.identity.dev === device && this.ticket.size <= INLINE_IO_MAX_BYTES;
  }

  private stillHeld(): boolean {
    try {
      fs.lstatSync(this.held);
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
  // handoff directory, off the event loop: an rmdir on a disk may wait for a discard. In memory
  // (tmpfs) it waits for nothing, and costs less inline than a trip to the thread pool.
  private async finish(removeEntry: boolean): Promise<void> {
    if (this.entry.handoff.inMemory) return this.finishSync(removeEntry);
    this.close();
    try {
      if (removeEntry) await fs.promises.rmdir(this.entryThroughHandoff()).catch(leaveToSweep);
    } finally {
      this.entry.handoff.close();
    }
  }

  private finishSync(removeEntry: boolean): void {
    this.close();
    try {
      if (removeEntry) fs.rmdirSync(this.entryThroughHandoff());
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

/** The held file was not at its name: as an unlink of it would have failed. */
function notThere(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file, '${file}'`), { code: 'ENOENT', path: file });
}

/** A consumed entry's directory that is not empty, or gone already: the sweep removes leftovers. */
function leaveToSweep(err: unknown): void {
  log('entry directory left to the sweep: %s', systemErrorCode(err) ?? err);
}

/**
 * How an error names a path of a ticket's entry: the handoff directory and the handoff's digest,
 * never the entry's name, which holds the ticket's id (all a claimer needs).
 * @internal
 */
export function shownEntry(entryPath: string, id: string): string {
  const at = entryPath.lastIndexOf(`${path.sep}entry_`);
  return `${at < 0 ? '' : entryPath.slice(0, at + 1)}<entry of handoff ${handoffKey(id)}>`;
}

/** How deep a chain of causes is followed: the claim's own are two or three deep. */
const MAX_CAUSE_DEPTH = 8;

/**
 * `err` as a claim of the entry `name` (of the ticket `id`) may raise it: with the entry's name,
 * which holds the ticket's id, shown as `<entry of handoff <digest>>`, and the id itself, should
 * it appear alone, as `<handoff <digest>>`, in every message, path and stack of the error and of
 * the errors it holds (`cause`). A system error that names the entry (`open
 * '/proc/<pid>/fd/<n>/entry_<id>_…'`, or its path without /proc) is replaced by a copy that keeps
 * its `name`, `code`, `errno` and `syscall`; the library's own errors, made by the failed call
 * and not yet seen by anyone, are rewritten where they stand, so that they keep their class.
 * What names neither is returned as it is.
 * @internal
 */
export function redacted<T>(err: T, name: string, id: string): T {
  const key = handoffKey(id);
  const scrub = (text: string): string => text.split(name).join(`<entry of handoff ${key}>`).split(id).join(`<handoff ${key}>`);
  return redactError(err, (text) => text.includes(id), scrub, 0) as T;
}

function redactError(err: unknown, leaks: (text: string) => boolean, scrub: (text: string) => string, depth: number): unknown {
  if (typeof err !== 'object' || err === null || depth > MAX_CAUSE_DEPTH || !(err instanceof Error || isTempFileError(err))) return err;
  // Every own field but an accessor's, and `stack`, which is one on Node 21 and later.
  const fields = new Map<string, unknown>();
  for (const key of Object.getOwnPropertyNames(err)) {
    const own = Object.getOwnPropertyDescriptor(err, key);
    if (own !== undefined && ('value' in own || key === 'stack')) fields.set(key, key === 'stack' ? err.stack : own.value);
  }
  const changed = new Map<string, unknown>();
  for (const [key, value] of fields) {
    const next = typeof value === 'string' ? (leaks(value) ? scrub(value) : value) : redactError(value, leaks, scrub, depth + 1);
    if (next !== value) changed.set(key, next);
  }
  if (changed.size === 0) return err;
  const target = isTempFileError(err) ? err : systemErrorCopy(err, fields);
  for (const [key, value] of changed) {
    const own = Object.getOwnPropertyDescriptor(err, key);
    Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: own?.enumerable ?? false });
  }
  return target;
}

/** A new error with the fields of `err` (a system error's `code`, `errno`, `syscall`, `path`...), its class's name kept. */
function systemErrorCopy(err: Error, fields: ReadonlyMap<string, unknown>): Error {
  const copy = new Error(err.message);
  for (const [key, value] of fields) {
    if (key === 'message' || key === 'stack') continue;
    const own = Object.getOwnPropertyDescriptor(err, key);
    Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable: own?.enumerable ?? true });
  }
  if (err.name !== copy.name) Object.defineProperty(copy, 'name', { value: err.name, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(copy, 'stack', { value: fields.get('stack'), writable: true, configurable: true, enumerable: false });
  return copy;
}
