import path from 'node:path';
import { Accounting } from '../limits/accounting.js';
import type { ManagerContext } from '../context/context.js';
import type { NameArgument } from '../handles/create.js';
import type { TempDir } from '../handles/dir.js';
import { ensureCapabilities } from '../disk/capabilities.js';
import { isLocalDisk } from '../disk/local-disk.js';
import { FileSystemError, isErrorCode, ManagerClosedError, StoreError, toFileSystemError } from '../base/errors.js';
import type { TempFile } from '../handles/file.js';
import { checkClaimOptions, claimEntry, ClaimedFile, runClaimed, type ClaimOptions } from '../handoff/claim.js';
import { isStoreBackend, type StoreClaimPlace } from '../handoff/store.js';
import { sameLocation, type StoreLocation, type StoreSweepResult } from '../base/stores.js';
import { FreeSpace } from '../limits/free-space.js';
import { parseTicket, type HandoffTicket } from '../handoff/ticket.js';
import { openHandoffDirSync } from '../handoff/handoff.js';
import { HandoffDirHold } from '../handoff/handoff-dir.js';
import { openPinnedSync } from '../disk/pinned-dir.js';
import { entryName, handoffDirOf } from '../base/layout.js';
import { logger } from '../base/log.js';
import { resolveOptions, type ResolvedOptions, type TempFileManagerOptions } from '../root/options.js';
import { ensureSafeRoot, type RootContext } from '../root/root.js';
import { runInScope, TempScope } from '../handles/scope.js';
import { Session, type SessionPlaces } from '../lifetime/session.js';
import { watchThreads } from '../lifetime/threads.js';
import { atExit } from '../owner/registry.js';
import { realFs } from '../disk/fs.js';
import type { WriteSource } from '../write/source.js';
import { attachBackgroundSweep } from '../sweep/background.js';
import { sweepStores } from '../sweep/stores.js';
import { sweepRoot, type SweepOptions, type SweepReport } from '../sweep/sweep.js';
import type { WriteOptions } from '../handles/write.js';

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
 * removed when their handles are disposed, and whatever is left when the manager is closed (or,
 * with `exitHook`, when the process exits); what a killed process left is removed by a later
 * sweep. The root itself is shared (other managers, workers, the sweep) and never removed.
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
  /** `<root>/handoff`, held open across handoffs and claims, checked at each. */
  private readonly handoffDir: HandoffDirHold;
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
   *
   * **Ownership:** the manager makes nothing yet but the root (mode 0700, when missing) and its
   * `.tempfile-manager` marker, both left in place for good. It attaches to its root's background
   * sweeper (unref'd timers, unless `sweepOnStart: false` and `sweepIntervalMs: 0`) and, with
   * `exitHook`, to the process exit hook; {@link close} detaches both.
   *
   * **Security:** an existing root must be a real directory (checked with `lstat`, never
   * followed) owned by this uid and not writable by group or others; a missing one is created
   * 0700, never its parents. The directory checked is then opened `O_NOFOLLOW` and must be the one
   * the check saw (docs/security.md, "Threats, one by one").
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, or one of
   * the wrong type or out of its range (`err.option` names it).
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: `prefix` is not a safe name part,
   * or is too long.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: the root is a symlink, not a
   * directory, another uid's or writable by others, its parent is missing, it was swapped while it
   * was checked, or its marker is of another on-disk format (`err.reason` says which).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the file system is full (ENOSPC) while
   * the root or its marker is made.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota is exhausted
   * (EDQUOT) while the root or its marker is made.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the root cannot be made, opened or marked
   * for another reason (EACCES in its parent, a read-only or virtual file system, EIO...).
   */
  constructor(options?: TempFileManagerOptions) {
    this.options = resolveOptions(options);
    this.root = this.options.root;
    const rootId = ensureSafeRoot(this.options.fs, this.root);
    const { fs, staleMs, graceMs, hostId } = this.options;
    this.rootContext = { fs, root: this.root, staleMs, graceMs, hostId, verifyRoot: () => this.session.checkRoot(), rootBase: () => this.session.rootBase() };
    this.session = new Session({ ...this.rootContext, rootId });
    this.handoffDir = new HandoffDirHold(fs);
    this.context = {
      fs: this.options.fs,
      prefix: this.options.prefix,
      session: () => this.sessionPlaces(),
      checkRoot: () => this.session.check(),
      rootBase: () => this.session.rootBase(),
      handoffDir: this.handoffDir,
      accounting: new Accounting(this.options.maxLiveBytes),
      freeSpace: new FreeSpace(this.options.fs, this.root, this.options.minFreeBytes, () => this.session.places?.base ?? this.session.rootBase()),
      root: this.root,
      localDisk: () => this.onLocalDisk,
      closed: () => this.isClosed,
    };
    this.rootScope = new TempScope(this.context);
    log('manager for %s', this.root);
    if (this.options.exitHook && this.options.fs === realFs) {
      watchThreads(this.root, false);
    }
    const { sweepOnStart, sweepIntervalMs } = this.options;
    const stores = this.options.stores.filter(isStoreBackend);
    this.stopBackgroundSweep = attachBackgroundSweep(this.rootContext, { onStart: sweepOnStart, intervalMs: sweepIntervalMs, stores });
  }

  /**
   * This manager's session directory; created on first use.
   * @throws Never. It returns the path chosen when the manager was made; nothing is checked.
   */
  get sessionPath(): string {
    return this.session.dir;
  }

  /**
   * True once {@link close} was called.
   * @throws Never. It reads a flag.
   */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * What a store built on this manager outside its layers (`tempfile-manager/tus`) needs: the
   * handles' context and the root's rules. @internal
   */
  internalParts(): { readonly context: ManagerContext; readonly rootContext: RootContext } {
    return { context: this.context, rootContext: this.rootContext };
  }

  /**
   * A new empty temp file (0600, an unguessable name), synchronously, in the manager's own scope.
   * {@inheritDoc TempScope.file}
   * @see {@link TempScope.file}, for what it owns, risks and throws.
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    return this.rootScope.file(suffixOrOptions);
  }

  /**
   * A new empty temp directory (0700), synchronously, in the manager's own scope.
   * {@inheritDoc TempScope.dir}
   * @see {@link TempScope.dir}, for what it owns, risks and throws.
   */
  dir(suffixOrOptions?: NameArgument): TempDir {
    return this.rootScope.dir(suffixOrOptions);
  }

  /**
   * Streams `source` into a new temp file of the manager's own scope, under its limits.
   * {@inheritDoc TempScope.write}
   * @see {@link TempScope.write}, for what it owns, risks and throws.
   */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    return this.rootScope.write(source, options);
  }

  /**
   * Live files and bytes, the quota and the free space seen last. Cheap: no disk access.
   * @throws Never. It copies counters kept in memory, also once the manager is closed.
   */
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
   * **Ownership:** the resolved {@link ClaimedFile} holds the entry's lease: the file stays in
   * `<root>/handoff/` under a name of this claim's own, and nothing but `consume()` deletes it (or
   * `keep()` moves it out). A claim disposed, or still held when the process exits normally, gives
   * the entry back; a claimer killed outright keeps it until its lease goes stale (`staleMs`),
   * then another claimer takes it over. Until it ends, the claim holds the entry's directory and
   * `<root>/handoff` open (where there is /proc).
   *
   * **Security:** the ticket is validated strictly before the disk is touched, and no path is
   * ever taken from it. `claimed.path` names the file only while this claim holds it: once
   * another claimer took the entry over, every step throws {@link LeaseLostError} and changes
   * nothing (docs/security.md, "One claimer holds a lease at a time").
   *
   * @example
   * await using claimed = await mgr.claim(job.data.ticket);
   * await transcode(claimed.path);
   * await claimed.consume(); // done; a throw above releases the entry instead
   * @throws {@link BadTicketError} `ERR_TEMPFILE_BAD_TICKET`: the ticket (or its JSON) is not a
   * valid ticket (`err.field` names the field); nothing is touched.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not an object,
   * has an unknown key, or `verifyDigest` is not a boolean.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed.
   * @throws {@link HandoffExpiredError} `ERR_TEMPFILE_HANDOFF_EXPIRED`: the ticket's `expiresAt` is
   * past; the sweep removes the entry.
   * @throws {@link HandoffNotFoundError} `ERR_TEMPFILE_HANDOFF_NOT_FOUND`: no entry for the ticket:
   * consumed already, swept, or made under another root.
   * @throws {@link AlreadyClaimedError} `ERR_TEMPFILE_ALREADY_CLAIMED`: a live claimer holds the
   * entry; retry after `err.retryAfterMs`.
   * @throws {@link HandoffMismatchError} `ERR_TEMPFILE_HANDOFF_MISMATCH`: the file is not the one
   * handed off (its size, with `verifyDigest` its digest, or it is not a regular file with one
   * link); it is given back untouched.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: with `verifyDigest`, the held
   * name was swapped for another file between its check and the read; it is given back.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path was renamed,
   * removed or replaced since the manager started.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: `<root>/handoff` is a symlink, not
   * a directory, another uid's or writable by others.
   * @throws {@link UnsupportedFileSystemError} `ERR_TEMPFILE_UNSUPPORTED_FS`: on the first claim
   * of a manager that made no file yet, the root's file system lacks a primitive the guarantees
   * rest on (probed once per root and process, in the entry).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: that probe found the file system full.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: that probe found this user's disk
   * quota exhausted.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system
   * (EACCES, EMFILE, EIO...; `err.syscallCode` says which).
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: a ticket handed off through an object store,
   * and no store in `stores` for its bucket and prefix (`reason: 'not-configured'`), or the store
   * unreachable within its `timeoutMs`, refusing the credentials or answering otherwise
   * (`err.reason` says which; the message names the endpoint, never a credential).
   */
  async claim(ticket: HandoffTicket | string, options?: ClaimOptions): Promise<ClaimedFile> {
    this.assertOpen();
    const parsed = parseTicket(ticket);
    if (parsed.store) return this.claimFromStore(parsed, parsed.store, options);
    const rootBase = this.session.rootBase();
    if (!this.opened) this.probeInEntry(parsed, rootBase);
    return claimEntry(this.rootContext, this.root, parsed, options, rootBase, this.handoffDir);
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
   * **Ownership:** the claim lives only while `fn` runs: `fn` must not keep `claimed` (or its
   * path) past its promise.
   *
   * Every failure is a rejection. Beyond the classes below, it rejects with whatever `fn` throws,
   * unchanged, and with every error of {@link claim} (then `fn` is not called).
   *
   * @example
   * // in a queue's job handler: a throw leaves the upload for the retry
   * await mgr.withClaim(job.data.ticket, (claimed) => transcode(claimed.path));
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `fn` is not a function
   * (before anything is claimed), or `options` is bad, as for {@link claim}.
   * @throws {@link LeaseLostError} `ERR_TEMPFILE_LEASE_LOST`: `fn` resolved, but another claimer
   * had taken the entry over (this one stalled past `staleMs`): the consume changed nothing.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: `fn` resolved, but deleting the file failed
   * (EIO, EACCES...); the entry is given back (released) for a retry.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: as {@link claim}, or `fn` resolved and the
   * object store could not record the consume. The entry is given back, but its data may already
   * be deleted (a consume deletes it while it records the lease): a retry then gets
   * {@link HandoffNotFoundError}, the job counted done, since `fn` did resolve.
   */
  withClaim<T>(ticket: HandoffTicket | string, fn: (claimed: ClaimedFile) => T | PromiseLike<T>, options?: ClaimOptions): Promise<T> {
    return runClaimed(() => this.claim(ticket, options), fn);
  }

  /**
   * Removes what dead processes left under the root: orphaned sessions (their lock is stale and,
   * on this host, their process is gone) with all their files. Never touches a live or young
   * session, never leaves the root, never follows a symlink.
   *
   * **Ownership:** the sweep removes what no live process owns: orphaned sessions, their locks,
   * and handoff entries expired unclaimed or left over from a consume. With `stores`, each store
   * is then swept through its client too (`store.sweep()`: expired and left-over entries of its
   * bucket, stale multipart uploads; not in a dry run), and `report.stores` says what each did; a
   * store that cannot be listed is reported there, never a rejection. Names under the root that
   * are not the library's are reported in `foreign`, never removed. A path that could not be
   * removed is reported in `errors`, and one left on purpose (a mount point) in `left`: neither
   * rejects.
   *
   * **Security:** the root must carry its marker; every session, lock and entry is reached
   * through the root held open (where there is /proc), never through a symlink, and no removal
   * crosses into a mount point (docs/security.md, "A process of the same uid, point by point").
   *
   * Every failure is a rejection; it also rejects with whatever `onProgress` throws, unchanged.
   *
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, a
   * `dryRun` that is not a boolean or an `onProgress` that is not a function.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path no longer names
   * the root the manager was made with.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: the root's marker is gone or of
   * another format, or `<root>/handoff` is a symlink, not a directory, another uid's or writable
   * by others.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the root or `<root>/handoff` cannot be
   * opened or read (EACCES, EMFILE, EIO...).
   */
  async sweep(options?: SweepOptions): Promise<SweepReport> {
    this.assertOpen();
    const report = await sweepRoot(this.rootContext, options);
    const stores = this.options.stores.filter(isStoreBackend);
    if (stores.length === 0 || report.dryRun) return report;
    const swept = await sweepStores(stores, this.options.staleMs);
    return { ...report, stores: swept };
  }

  /**
   * A scope of the manager's own: what is made through it is removed together when it is disposed.
   * {@inheritDoc TempScope.scope}
   * @see {@link TempScope.scope}, for what it owns and throws.
   */
  scope(): TempScope {
    this.assertOpen();
    return this.rootScope.scope();
  }

  /**
   * Runs `fn` with a new scope, and removes what it made when `fn` settles.
   * {@inheritDoc TempScope.withScope}
   * @see {@link TempScope.withScope}, for what it owns and throws.
   */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes the session directory with everything still in it and releases its lock; every
   * handle of this manager is then disposed. Idempotent.
   *
   * **Ownership:** from the call on the manager owns nothing and makes nothing: its handles and
   * scopes are disposed without a removal of their own (the session goes whole), writes in flight
   * are aborted, a `keep()` in flight rejects with {@link ManagerClosedError} (its file went with
   * the session), and the background sweeper and the exit hook are detached. What was kept or
   * handed off is not the manager's and stays. A second call does nothing, also after a failure:
   * what a failed close left is for a later sweep.
   *
   * **Security:** the session is removed through the directories held open (where there is
   * /proc; without it, by the path just checked), without following a symlink or crossing into a
   * mount point (docs/security.md, "A process of the same uid, point by point", and "Without
   * /proc").
   *
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the session
   * directory, was swapped since the manager started: the session's own files were removed
   * through the directory held open (where /proc lets it), and nothing through the swapped path.
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: a mount point inside the session
   * was left in place with everything under it; everything else was removed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: a path of the session could not be removed
   * (EACCES, EBUSY, EIO...; the first failure is reported); the rest is left for a sweep.
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
   * Synchronous {@link close}, for exit paths and `using`. It owns, removes and throws as
   * {@link close} does.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the session
   * directory, was swapped since the manager started: the session's own files were removed
   * through the directory held open (where /proc lets it), and nothing through the swapped path.
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: a mount point inside the session
   * was left in place with everything under it; everything else was removed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: a path of the session could not be removed
   * (EACCES, EBUSY, EIO...; the first failure is reported); the rest is left for a sweep.
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

  /**
   * Same as {@link close}: `await using` calls it at the end of the scope.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: as {@link close}.
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: as {@link close}.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: as {@link close}.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Same as {@link closeSync}: `using` calls it at the end of the scope.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: as {@link closeSync}.
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: as {@link closeSync}.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: as {@link closeSync}.
   */
  [Symbol.dispose](): void {
    this.closeSync();
  }

  /** Marks the manager closed; true when there is a session left to remove. */
  private beginClose(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    this.handoffDir.close();
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
    this.handoffDir.close();
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
      if (isErrorCode(typed, 'ERR_TEMPFILE_IO') && typed.syscallCode === 'ENOENT') return; // claimed and consumed meanwhile
      throw typed;
    } finally {
      handoff.close();
    }
  }

  /**
   * A ticket handed off through an object store is claimed through the store given for its
   * location: the file is downloaded into this manager's scope, its lease held in the store.
   */
  private async claimFromStore(ticket: HandoffTicket, location: StoreLocation, options: ClaimOptions | undefined): Promise<ClaimedFile> {
    checkClaimOptions(options);
    const store = this.options.stores.find((candidate) => sameLocation(candidate.location, location));
    if (!store || !isStoreBackend(store)) {
      throw new StoreError(
        'not-configured',
        `The ticket ${ticket.id} lives in the bucket "${location.bucket}" under the prefix "${location.prefix}", and this manager was given no store for it: ` +
          `make it with new TempFileManager({ stores: [s3Store({ client, bucket: '${location.bucket}', prefix: '${location.prefix}' })] }).`,
      );
    }
    const { staleMs, hostId } = this.options;
    const download: StoreClaimPlace['download'] = (source, writeOptions) => this.rootScope.write(source, writeOptions);
    const claim = await store.claim(ticket, { staleMs, hostId, download });
    if (this.isClosed) {
      // Closed while the claim was under way: its local copy went with the scope. The entry is
      // given back at once rather than held for nobody until it goes stale.
      await claim.release().catch(() => {});
      throw new ManagerClosedError();
    }
    return new ClaimedFile(claim, ticket);
  }

  private assertOpen(): void {
    if (this.isClosed) throw new ManagerClosedError();
  }
}
