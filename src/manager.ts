import path from 'node:path';
import { Accounting } from './limits/accounting.js';
import type { ManagerContext } from './context.js';
import type { NameArgument } from './handles/create.js';
import type { TempDir } from './handles/dir.js';
import { ensureCapabilities } from './disk/capabilities.js';
import { isLocalDisk } from './disk/local-disk.js';
import { FileSystemError, ManagerClosedError, toFileSystemError } from './errors.js';
import type { TempFile } from './handles/file.js';
import { claimEntry, runClaimed, type ClaimedFile, type ClaimOptions } from './handoff/claim.js';
import { FreeSpace } from './limits/free-space.js';
import { parseTicket, type HandoffTicket } from './handoff/ticket.js';
import { openHandoffDirSync } from './handoff/handoff.js';
import { openPinnedSync } from './disk/pinned-dir.js';
import { entryName, handoffDirOf } from './layout.js';
import { logger } from './log.js';
import { resolveOptions, type ResolvedOptions, type TempFileManagerOptions } from './options.js';
import { ensureSafeRoot, type RootContext } from './root.js';
import { runInScope, TempScope } from './handles/scope.js';
import { Session, type SessionPlaces } from './lifetime/session.js';
import { watchThreads } from './lifetime/threads.js';
import { atExit } from './owner/registry.js';
import { realFs } from './disk/fs.js';
import type { WriteSource } from './write/source.js';
import { attachBackgroundSweep } from './sweep/background.js';
import { sweepRoot, type SweepOptions, type SweepReport } from './sweep/sweep.js';
import type { WriteOptions } from './handles/write.js';

/** A snapshot of a manager's usage, from `mgr.stats()`. */
export interface TempFileStats {
  /** Files of this manager not yet removed, kept or closed. */
  readonly liveFiles: number;
  /** Bytes written by `write()` into files that are still live (counted while they stream). */
  readonly liveBytes: number;
  /** The `maxLiveBytes` quota (Infinity when unset). */
  readonly maxLiveBytes: number;
  /** Bytes `write()` may still add before the quota refuses. */
  readonly quotaLeft: number;
  /** Free bytes on the root's file system at the last check (before a write, and as it grows). */
  readonly freeBytes: number | undefined;
  /** When the free space was last checked. */
  readonly freeCheckedAt: Date | undefined;
  /** The `minFreeBytes` floor. */
  readonly minFreeBytes: number;
}

const log = logger('manager');

/**
 * Owns a session directory under the root and everything made in it. Files and directories are
 * removed when their handles are disposed, and whatever is left when the manager is closed.
 *
 * @example
 * const mgr = new TempFileManager({ root: '/var/tmp/myapp' });
 * await using video = mgr.file('.mkv');
 * await pipeline(req, video.createWriteStream());
 */
export class TempFileManager implements AsyncDisposable, Disposable {
  /** The absolute root directory, checked safe when the manager was made. */
  readonly root: string;
  private readonly options: ResolvedOptions;
  private readonly session: Session;
  /** The root and its rules, shared by the session, the sweep and the leases. */
  private readonly rootContext: RootContext;
  private readonly context: ManagerContext;
  private readonly rootScope: TempScope;
  /** Removes the exit task of the open session, if any. */
  private dropExitTask: () => void = () => {};
  private opened = false;
  private onLocalDisk = false;
  private isClosed = false;
  private readonly stopBackgroundSweep: () => void;

  /**
   * Validates the options and makes sure the root exists and is safe (synchronous), and records
   * which directory it is. The session directory is created on first use, through the root held
   * open from then on: a root renamed and replaced (say by a symlink) after this point is never
   * written or removed through; calls then throw {@link RootChangedError}.
   * @throws {@link InvalidOptionError} for a bad option; {@link UnsafeRootError} for an unsafe root.
   */
  constructor(options?: TempFileManagerOptions) {
    this.options = resolveOptions(options);
    this.root = this.options.root;
    const rootId = ensureSafeRoot(this.options.fs, this.root);
    const { fs, staleMs, graceMs, hostId } = this.options;
    this.rootContext = { fs, root: this.root, staleMs, graceMs, hostId, verifyRoot: () => this.session.checkRoot(), rootBase: () => this.session.rootBase() };
    this.session = new Session({ ...this.rootContext, rootId });
    this.context = {
      fs: this.options.fs,
      prefix: this.options.prefix,
      session: () => this.sessionPlaces(),
      checkRoot: () => this.session.check(),
      rootBase: () => this.session.rootBase(),
      accounting: new Accounting(this.options.maxLiveBytes),
      freeSpace: new FreeSpace(this.options.fs, this.root, this.options.minFreeBytes, () => this.session.places?.base ?? this.session.rootBase()),
      root: this.root,
      localDisk: () => this.onLocalDisk,
    };
    this.rootScope = new TempScope(this.context);
    log('manager for %s', this.root);
    if (this.options.exitHook && this.options.fs === realFs) {
      watchThreads(this.root, false);
    }
    const { sweepOnStart, sweepIntervalMs } = this.options;
    this.stopBackgroundSweep = attachBackgroundSweep(this.rootContext, { onStart: sweepOnStart, intervalMs: sweepIntervalMs });
  }

  /** This manager's session directory; created on first use. */
  get sessionPath(): string {
    return this.session.dir;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * A new empty temp file (mode 0600, created O_CREAT|O_EXCL|O_NOFOLLOW), synchronously.
   * The name is the prefix, 128 random bits in hex, and the suffix.
   * @param suffixOrOptions A suffix such as `'.mkv'`, or `{ prefix, suffix }`.
   * @throws {@link InvalidNameError} before touching the disk when the prefix or suffix is unsafe.
   * @throws {@link RootChangedError} when the root was swapped since the manager started.
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    return this.rootScope.file(suffixOrOptions);
  }

  /**
   * A new empty temp directory (mode 0700), synchronously. Disposal removes the whole tree.
   * @throws {@link InvalidNameError} when the prefix or suffix is unsafe.
   * @throws {@link RootChangedError} when the root was swapped since the manager started.
   */
  dir(suffixOrOptions?: NameArgument): TempDir {
    return this.rootScope.dir(suffixOrOptions);
  }

  /**
   * Streams `source` into a new temp file in constant memory and resolves when every byte is on
   * disk. On a size limit, quota, abort, source or disk failure the source is stopped, the partial
   * file is removed, and a typed error is thrown; the manager keeps working.
   *
   * @example
   * const upload = await mgr.write(req, { suffix: '.mkv', maxBytes: 2 ** 31, hash: 'sha256' });
   * console.log(upload.size, upload.digest);
   * @throws {@link RootChangedError} when the root was swapped since the manager started.
   */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    return this.rootScope.write(source, options);
  }

  /** Live files and bytes, the quota and the free space seen last. Cheap: no disk access. */
  stats(): TempFileStats {
    const { accounting, freeSpace } = this.context;
    return {
      liveFiles: accounting.liveFiles,
      liveBytes: accounting.liveBytes,
      maxLiveBytes: accounting.maxLiveBytes,
      quotaLeft: accounting.maxLiveBytes - accounting.liveBytes,
      freeBytes: freeSpace.lastFreeBytes,
      freeCheckedAt: freeSpace.lastCheckedAt,
      minFreeBytes: this.options.minFreeBytes,
    };
  }

  /**
   * Claims a handed-off file by its ticket (the object or its JSON): takes the lease on the entry,
   * refreshed while this process lives, and checks the size (and, with `verifyDigest`, the digest).
   * Call `consume()` when the job is done: that deletes the file and the entry. Disposing the
   * claim without it RELEASES the entry (as `release()` does): a job that throws inside
   * `await using` is given back for its retry, never lost. {@link withClaim} does both in one call.
   *
   * @example
   * await using claimed = await mgr.claim(job.data.ticket);
   * await transcode(claimed.path);
   * await claimed.consume(); // done; a throw above releases the entry instead
   * @throws {@link BadTicketError}, {@link HandoffNotFoundError}, {@link HandoffExpiredError},
   * {@link AlreadyClaimedError} (with `retryAfterMs`), {@link HandoffMismatchError},
   * {@link ManagerClosedError}; {@link RootChangedError} when the root was swapped since the manager started.
   */
  async claim(ticket: HandoffTicket | string, options?: ClaimOptions): Promise<ClaimedFile> {
    const parsed = parseTicket(ticket);
    this.assertOpen();
    const rootBase = this.session.rootBase();
    if (!this.opened) this.probeInEntry(parsed, rootBase);
    return claimEntry(this.rootContext, this.root, parsed, options, rootBase);
  }

  /**
   * Claims the ticket's entry, runs `fn` with the claim, and ends the claim when `fn` settles:
   * the safe way to process a handed-off file (with or without `using`). Resolves with what `fn`
   * returns.
   *
   * - `fn` resolves: the entry is consumed (the file and the entry are deleted), then the promise
   *   resolves. If the consume fails, the entry is released and the consume's error rejects.
   * - `fn` throws or rejects: the entry is RELEASED (the retry of the job claims it at once) and
   *   the same error is rethrown. If releasing failed too (e.g. {@link LeaseLostError}: another
   *   worker took the entry over), that error is attached as `err.releaseError`; the error `fn`
   *   threw is never replaced.
   * - `fn` may end the claim itself (`keep()`, `release()`): nothing more is done then.
   *
   * @example
   * // in a queue's job handler: a throw leaves the upload for the retry
   * await mgr.withClaim(job.data.ticket, (claimed) => transcode(claimed.path));
   * @throws {@link InvalidOptionError} (a rejection, before anything is claimed) when `fn` is not a
   * function; what {@link claim} throws (then `fn` is not called), what `fn` throws, and
   * {@link LeaseLostError} or a {@link FileSystemError} when the consume fails.
   */
  withClaim<T>(ticket: HandoffTicket | string, fn: (claimed: ClaimedFile) => T | PromiseLike<T>, options?: ClaimOptions): Promise<T> {
    return runClaimed(() => this.claim(ticket, options), fn);
  }

  /**
   * Removes what dead processes left under the root: orphaned sessions (their lock is stale and,
   * on this host, their process is gone) with all their files. Never touches a live or young
   * session, never leaves the root, never follows a symlink.
   * @throws {@link RootChangedError} (a rejection) when the root's path no longer names the root
   * the manager was made with.
   */
  sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepRoot(this.rootContext, options);
  }

  /** A scope: files, directories and nested scopes removed together when it is disposed. */
  scope(): TempScope {
    this.assertOpen();
    return this.rootScope.scope();
  }

  /**
   * Runs `fn` with a new scope and removes the scope's files, directories and nested scopes when
   * `fn` settles: the way to scope files without `using` (plain JavaScript on Node 20 and 22).
   * Resolves with what `fn` returns, once its files are gone.
   *
   * - `fn` throws or rejects: the files are removed and the same error is rethrown. If removing
   *   failed too, that {@link RemoveError} is attached to the error as `err.removeError`; the
   *   error `fn` threw is never replaced.
   * - `fn` succeeds but a file cannot be removed: rejects with a {@link RemoveError} listing every
   *   path that could not be removed.
   *
   * @example
   * const pages = await mgr.withScope(async (scope) => {
   *   const upload = await scope.write(req, { suffix: '.pdf', maxBytes: 50 * 1024 ** 2 });
   *   const out = scope.dir();
   *   await renderPages(upload.path, out.path);
   *   return countPages(out.path);
   * }); // the upload and the directory are gone here, on return and on throw
   * @throws {@link InvalidOptionError} (a rejection, before the scope is made) when `fn` is not a function.
   */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes the session directory with everything still in it and releases its lock; every
   * handle of this manager is then disposed. Idempotent.
   * @throws {@link RootChangedError} when the root was swapped since the manager started: the
   * session's own files were removed through the directory held open (where /proc lets it), and
   * nothing through the swapped path.
   */
  async close(): Promise<void> {
    if (!this.beginClose()) {
      this.session.release();
      return;
    }
    try {
      await this.session.close();
    } finally {
      this.dropExitTask();
    }
  }

  /**
   * Synchronous {@link close}, for exit paths and `using`.
   * @throws {@link RootChangedError} as {@link close} does.
   */
  closeSync(): void {
    if (!this.beginClose()) {
      this.session.release();
      return;
    }
    try {
      this.session.closeSync();
    } finally {
      this.dropExitTask();
    }
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Same as {@link closeSync}. */
  [Symbol.dispose](): void {
    this.closeSync();
  }

  /** Marks the manager closed; true when there is a session left to remove. */
  private beginClose(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    this.stopBackgroundSweep();
    this.rootScope.abandon();
    log('closing %s', this.session.dir);
    return this.opened;
  }

  private sessionPlaces(): SessionPlaces {
    this.assertOpen();
    const open = this.session.places;
    if (this.opened && open) return open;
    if (!this.opened) {
      const places = this.session.open();
      try {
        ensureCapabilities(this.options.fs, this.root, places.base);
      } catch (err) {
        try {
          this.session.closeSync();
        } catch {
          // the probe's failure is the one to report
        }
        throw err;
      }
      this.opened = true;
      this.onLocalDisk = isLocalDisk(this.options.fs, places.base);
      if (this.options.exitHook) this.dropExitTask = atExit(() => this.closeOnExit());
      if (this.options.exitHook && this.options.fs === realFs) watchThreads(this.root, true);
    }
    const places = this.session.places;
    if (!places) throw new ManagerClosedError();
    return places;
  }

  private closeOnExit(): void {
    this.isClosed = true;
    this.session.closeSync();
  }

  /**
   * A manager that only claims has no session to probe its root's file system in: it probes in
   * the ticket's entry directory, reached through the pinned handoff directory (the scratch goes
   * with the entry if a crash leaves it). No entry: nothing to probe, the claim finds nothing.
   */
  private probeInEntry(ticket: HandoffTicket, rootBase: string): void {
    const { fs } = this.options;
    const handoff = openHandoffDirSync(fs, this.root, rootBase);
    if (!handoff) return;
    try {
      const entry = openPinnedSync(fs, `${handoff.base}/${entryName(ticket.id, ticket.expiresAt)}`);
      if (typeof entry === 'string') return;
      try {
        ensureCapabilities(fs, this.root, entry.base);
      } finally {
        entry.close();
      }
    } catch (err) {
      const typed = toFileSystemError('find the handoff entry', path.join(handoffDirOf(this.root), entryName(ticket.id, ticket.expiresAt)), err);
      if (typed instanceof FileSystemError && typed.syscallCode === 'ENOENT') return; // claimed and consumed meanwhile
      throw typed;
    } finally {
      handoff.close();
    }
  }

  private assertOpen(): void {
    if (this.isClosed) throw new ManagerClosedError();
  }
}
