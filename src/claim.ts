import { createHash } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  DisposedError,
  HandoffExpiredError,
  HandoffMismatchError,
  HandoffNotFoundError,
  LeaseLostError,
  systemErrorCode,
  TempFileError,
  toFileSystemError,
} from './errors.js';
import type { FileSystem } from './fs.js';
import { dataName, entryName } from './handoff.js';
import { acquireLease, heldName, holderOf, isHeldName, newOwnerToken, type Lease, type LeaseContext } from './lease.js';
import { openPinnedSync, type PinnedDirSync } from './pinned-dir.js';
import { moveFile, resolveDestination, type KeepOptions } from './move.js';
import { parseTicket, type HandoffMeta, type HandoffTicket } from './ticket.js';
import { logger } from './log.js';

const log = logger('claim');

/** Options of `mgr.claim()`. */
export interface ClaimOptions {
  /** Re-hash the file and refuse it unless it matches the ticket's digest. @default false */
  readonly verifyDigest?: boolean;
}

/**
 * Takes the lease on a ticket's entry: exactly one claimer at a time. The size is always checked
 * against the ticket, the digest on request.
 * @internal
 */
export async function claimEntry(lease: LeaseContext, handoffDir: string, input: unknown, options: ClaimOptions = {}): Promise<ClaimedFile> {
  const ticket = parseTicket(input);
  if (Date.now() > ticket.expiresAt) throw new HandoffExpiredError(ticket.id, ticket.expiresAt);
  const entryDir = path.join(handoffDir, entryName(ticket.id, ticket.expiresAt));
  const entry = pinEntry(lease.fs, entryDir, ticket.id);
  let held: Lease | undefined;
  try {
    held = await acquireLease(lease, { dir: entryDir, base: entry.base }, ticket.id, async () => {
      const current = await findData(lease.fs, entry.base, ticket.suffix);
      return current === undefined ? undefined : holderOf(current);
    });
    const name = await takeData(lease, entry.base, ticket);
    await verify(lease.fs, entry.base, name, ticket, options).catch((err: unknown) => {
      if (err instanceof TempFileError) throw err;
      if (systemErrorCode(err) === 'ENOENT') throw new HandoffNotFoundError(ticket.id);
      throw toFileSystemError('verify the handoff entry', path.join(entryDir, name), err);
    });
    return new ClaimedFile(lease.fs, { dir: entryDir, pinned: entry }, name, ticket, held);
  } catch (err) {
    await held?.release();
    entry.close();
    throw err;
  }
}

// The entry directory is pinned by a descriptor for the whole claim: the lease and every step on
// the data file go through it, so swapping the entry's path for a symlink cannot redirect them.
function pinEntry(fs: FileSystem, entryDir: string, id: string): PinnedDirSync {
  let pinned: ReturnType<typeof openPinnedSync>;
  try {
    pinned = openPinnedSync(fs, entryDir);
  } catch (err) {
    throw toFileSystemError('find the handoff entry', entryDir, err);
  }
  if (typeof pinned === 'string') throw new HandoffNotFoundError(id);
  return pinned;
}

/** The name of the entry's data file (`data<suffix>` or `held_<owner><suffix>`), if any. */
async function findData(fs: FileSystem, base: string, suffix: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await fs.promises.readdir(base);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw toFileSystemError('read the handoff entry', base, err);
  }
  return names.find((name) => name === dataName(suffix) || isHeldName(name, suffix));
}

// Renaming the data file to a name of our own is what fences the holders: whoever held it before
// now acts on a name that no longer exists. An entry without data is left for the sweep.
async function takeData(lease: LeaseContext, base: string, ticket: HandoffTicket): Promise<string> {
  const current = await findData(lease.fs, base, ticket.suffix);
  if (current === undefined) throw new HandoffNotFoundError(ticket.id);
  const mine = heldName(newOwnerToken(lease.hostId), ticket.suffix);
  try {
    await lease.fs.promises.rename(path.join(base, current), path.join(base, mine));
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') throw new HandoffNotFoundError(ticket.id);
    throw toFileSystemError('claim the handoff entry', base, err);
  }
  return mine;
}

async function verify(fs: FileSystem, base: string, name: string, ticket: HandoffTicket, options: ClaimOptions): Promise<void> {
  const filePath = path.join(base, name);
  const stat = await fs.promises.lstat(filePath);
  const problem = !stat.isFile()
    ? 'not a regular file'
    : stat.size !== ticket.size
      ? `${stat.size} bytes, the ticket says ${ticket.size}`
      : options.verifyDigest && ticket.digest && (await digestOf(fs, filePath, ticket.digest)) !== ticket.digest
        ? 'the digest differs'
        : undefined;
  if (problem === undefined) return;
  await fs.promises.rename(filePath, path.join(base, dataName(ticket.suffix))).catch(() => {});
  throw new HandoffMismatchError(ticket.id, problem);
}

async function digestOf(fs: FileSystem, filePath: string, expected: string): Promise<string> {
  const algorithm = expected.slice(0, expected.indexOf(':'));
  const hash = createHash(algorithm);
  await pipeline(fs.createReadStream(filePath), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

type ClaimState = 'held' | 'done';

/**
 * A claimed handoff entry, held under a lease. Disposing it consumes the entry (deletes the file,
 * then drops the lease); `release()` gives it back for another worker; `keep()` moves it out.
 * Every one of these first checks that this claim still holds the entry: if another worker took
 * the lease over after this one stalled, they throw {@link LeaseLostError} and touch nothing.
 */
export class ClaimedFile implements AsyncDisposable, Disposable {
  /** The ticket this claim was made with. */
  readonly ticket: HandoffTicket;
  /** Where the bytes are while this claim holds them. */
  readonly path: string;
  private readonly fs: FileSystem;
  private readonly entry: { readonly dir: string; readonly pinned: PinnedDirSync };
  // The held file through the pinned entry directory: what every step acts on.
  private readonly held: string;
  private readonly name: string;
  private readonly lease: Lease;
  private state: ClaimState = 'held';

  /** @internal */
  constructor(fs: FileSystem, entry: { dir: string; pinned: PinnedDirSync }, name: string, ticket: HandoffTicket, lease: Lease) {
    this.fs = fs;
    this.entry = entry;
    this.name = name;
    this.path = path.join(entry.dir, name);
    this.held = path.join(entry.pinned.base, name);
    this.ticket = ticket;
    this.lease = lease;
  }

  /** Size in bytes (checked against the file when claimed). */
  get size(): number {
    return this.ticket.size;
  }

  /** The ticket's `meta`. */
  get meta(): HandoffMeta | undefined {
    return this.ticket.meta;
  }

  /** True once consumed, released or kept. */
  get disposed(): boolean {
    return this.state === 'done';
  }

  /** Deletes the file and the entry, then drops the lease. Idempotent. */
  async consume(): Promise<void> {
    if (!this.begin()) return;
    try {
      await this.fs.promises.unlink(this.held);
    } catch (err) {
      this.failure(err, 'consume', true);
    }
    await this.finish(true);
  }

  /** Synchronous {@link consume}. */
  consumeSync(): void {
    if (!this.begin()) return;
    try {
      this.fs.unlinkSync(this.held);
    } catch (err) {
      this.failure(err, 'consume', true);
    }
    this.finishSync(true);
  }

  /** Gives the entry back unconsumed: the next claimer gets it. */
  async release(): Promise<void> {
    if (!this.begin()) return;
    try {
      await this.fs.promises.rename(this.held, path.join(this.entry.pinned.base, dataName(this.ticket.suffix)));
    } catch (err) {
      this.failure(err, 'release', false);
    }
    await this.finish(false);
  }

  /** Moves the file out for good, then removes the entry; returns the absolute destination. */
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    const target = resolveDestination(destination);
    if (!this.begin()) throw new DisposedError('ClaimedFile', this.path);
    try {
      await moveFile(this.fs, this.held, target, options);
    } catch (err) {
      this.failure(err, 'keep', false);
    }
    await this.finish(true);
    return target;
  }

  /** Same as {@link consume}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.consume();
  }

  /** Same as {@link consumeSync}. */
  [Symbol.dispose](): void {
    this.consumeSync();
  }

  private begin(): boolean {
    if (this.state === 'done') return false;
    if (this.lease.lost) throw new LeaseLostError(this.ticket.id);
    return true;
  }

  /**
   * Handles a failed step; returns only when the step's goal was met anyway (a consume of a file
   * that is already gone). Our held name disappears when another claimer took the lease over and
   * renamed the file to its own name: then the entry is theirs, and we touch nothing more.
   */
  private failure(err: unknown, action: string, goneIsDone: boolean): void {
    const code = err instanceof TempFileError && 'syscallCode' in err ? err.syscallCode : systemErrorCode(err);
    const typed = () =>
      err instanceof TempFileError && code === undefined ? err : toFileSystemError(`${action} the handoff entry`, this.path, err);
    if (code !== 'ENOENT') throw typed(); // the claim stays held: the step can be tried again
    const names = this.entryNames();
    if (names === undefined || names.includes(this.name)) throw typed(); // our file is still here
    if (names.some((name) => isHeldName(name, this.ticket.suffix))) {
      this.state = 'done';
      this.entry.pinned.close();
      throw new LeaseLostError(this.ticket.id);
    }
    if (goneIsDone) return;
    this.finishSync(false);
    throw new HandoffNotFoundError(this.ticket.id);
  }

  private entryNames(): string[] | undefined {
    try {
      return this.fs.readdirSync(this.entry.pinned.base) as string[];
    } catch {
      return undefined;
    }
  }

  // Drops the lease, then the entry directory (when the data left it), off the event loop.
  private async finish(removeEntry: boolean): Promise<void> {
    this.state = 'done';
    await this.lease.release();
    this.entry.pinned.close();
    if (removeEntry) await this.fs.promises.rmdir(this.entry.dir).catch(leaveToSweep);
  }

  private finishSync(removeEntry: boolean): void {
    this.state = 'done';
    this.lease.releaseSync();
    this.entry.pinned.close();
    if (!removeEntry) return;
    try {
      this.fs.rmdirSync(this.entry.dir);
    } catch (err) {
      leaveToSweep(err);
    }
  }
}

/** A consumed entry's directory that is not empty, or gone already: the sweep removes leftovers. */
function leaveToSweep(err: unknown): void {
  log('entry directory left to the sweep: %s', systemErrorCode(err) ?? err);
}
