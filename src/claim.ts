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
import { acquireLease, heldName, holderOf, newOwnerToken, type Lease, type LeaseContext } from './lease.js';
import { moveFile, resolveDestination, type KeepOptions } from './move.js';
import { removeTree } from './remove.js';
import { parseTicket, type HandoffMeta, type HandoffTicket } from './ticket.js';

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
  await assertEntryExists(lease.fs, entryDir, ticket.id);
  const held = await acquireLease(lease, entryDir, ticket.id, async () => {
    const current = await findData(lease.fs, entryDir, ticket.suffix);
    return current === undefined ? undefined : holderOf(current);
  });
  try {
    const filePath = await takeData(lease, entryDir, ticket);
    await verify(lease.fs, filePath, ticket, options).catch((err: unknown) => {
      if (err instanceof TempFileError) throw err;
      if (systemErrorCode(err) === 'ENOENT') throw new HandoffNotFoundError(ticket.id);
      throw toFileSystemError('verify the handoff entry', filePath, err);
    });
    return new ClaimedFile(lease.fs, entryDir, filePath, ticket, held);
  } catch (err) {
    held.release();
    throw err;
  }
}

async function assertEntryExists(fs: FileSystem, entryDir: string, id: string): Promise<void> {
  try {
    if ((await fs.promises.lstat(entryDir)).isDirectory()) return;
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('find the handoff entry', entryDir, err);
  }
  throw new HandoffNotFoundError(id);
}

/** The name of the entry's data file (`data<suffix>` or `held_<owner><suffix>`), if any. */
async function findData(fs: FileSystem, entryDir: string, suffix: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await fs.promises.readdir(entryDir);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return undefined;
    throw toFileSystemError('read the handoff entry', entryDir, err);
  }
  return names.find((name) => name === dataName(suffix) || (name.startsWith('held_') && name.endsWith(suffix)));
}

// Renaming the data file to a name of our own is what fences the holders: whoever held it before
// now acts on a name that no longer exists.
async function takeData(lease: LeaseContext, entryDir: string, ticket: HandoffTicket): Promise<string> {
  const current = await findData(lease.fs, entryDir, ticket.suffix);
  if (current === undefined) {
    await removeTree(lease.fs, entryDir).catch(() => {});
    throw new HandoffNotFoundError(ticket.id);
  }
  const mine = path.join(entryDir, heldName(newOwnerToken(lease.hostId), ticket.suffix));
  try {
    await lease.fs.promises.rename(path.join(entryDir, current), mine);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') throw new HandoffNotFoundError(ticket.id);
    throw toFileSystemError('claim the handoff entry', entryDir, err);
  }
  return mine;
}

async function verify(fs: FileSystem, filePath: string, ticket: HandoffTicket, options: ClaimOptions): Promise<void> {
  const stat = await fs.promises.lstat(filePath);
  const problem = !stat.isFile()
    ? 'not a regular file'
    : stat.size !== ticket.size
      ? `${stat.size} bytes, the ticket says ${ticket.size}`
      : options.verifyDigest && ticket.digest && (await digestOf(fs, filePath, ticket.digest)) !== ticket.digest
        ? 'the digest differs'
        : undefined;
  if (problem === undefined) return;
  await fs.promises.rename(filePath, path.join(path.dirname(filePath), dataName(ticket.suffix))).catch(() => {});
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
  private readonly entryDir: string;
  private readonly lease: Lease;
  private state: ClaimState = 'held';

  /** @internal */
  constructor(fs: FileSystem, entryDir: string, filePath: string, ticket: HandoffTicket, lease: Lease) {
    this.fs = fs;
    this.entryDir = entryDir;
    this.path = filePath;
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
    await this.fenced(() => this.fs.promises.unlink(this.path), 'consume');
    this.finish(true);
  }

  /** Synchronous {@link consume}. */
  consumeSync(): void {
    if (!this.begin()) return;
    try {
      this.fs.unlinkSync(this.path);
    } catch (err) {
      throw this.failure(err, 'consume');
    }
    this.finish(true);
  }

  /** Gives the entry back unconsumed: the next claimer gets it. */
  async release(): Promise<void> {
    if (!this.begin()) return;
    await this.fenced(() => this.fs.promises.rename(this.path, path.join(this.entryDir, dataName(this.ticket.suffix))), 'release');
    this.finish(false);
  }

  /** Moves the file out for good, then removes the entry; returns the absolute destination. */
  async keep(destination: string, options: KeepOptions = {}): Promise<string> {
    const target = resolveDestination(destination);
    if (!this.begin()) throw new DisposedError('ClaimedFile', this.path);
    await this.fenced(() => moveFile(this.fs, this.path, target, options), 'keep');
    this.finish(true);
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

  private async fenced(step: () => Promise<unknown>, action: string): Promise<void> {
    try {
      await step();
    } catch (err) {
      throw this.failure(err, action);
    }
  }

  // Our held name is gone only if another claimer renamed it away: the lease was lost.
  private failure(err: unknown, action: string): TempFileError {
    const code = err instanceof TempFileError && 'syscallCode' in err ? err.syscallCode : systemErrorCode(err);
    if (code === 'ENOENT') {
      this.state = 'done';
      return new LeaseLostError(this.ticket.id);
    }
    return toFileSystemError(`${action} the handoff entry`, this.path, err);
  }

  private finish(removeEntry: boolean): void {
    this.state = 'done';
    this.lease.release();
    if (!removeEntry) return;
    try {
      this.fs.rmdirSync(this.entryDir);
    } catch {
      // Not empty or gone: the sweep removes leftovers of consumed entries.
    }
  }
}
