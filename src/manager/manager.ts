import { Accounting } from '../limits/accounting.js';
import { handoffKey, traced, TRACING_CHANNELS } from '../base/channels.js';
import { madeContext, type ManagerContext } from '../context/context.js';
import type { NameArgument } from '../handles/create.js';
import type { TempDir } from '../handles/dir.js';
import { ensureCapabilities } from '../disk/capabilities.js';
import { localDiskKind, type LocalDiskKind } from '../disk/local-disk.js';
import { FileSystemError, ManagerClosedError, StoreError, type DiskErrors } from '../base/errors.js';
import type { TempFile } from '../handles/file.js';
import { checkClaimOptions, ClaimedFile, runClaimed, type ClaimOptions } from '../handoff/claim.js';
import { isStoreBackend, sweepStores, type ClaimPlace, type HandoffBackend } from '../handoff/backend.js';
import { DiskHandoff } from '../handoff/disk-backend.js';
import { describeLocation, sameLocation } from '../base/stores.js';
import { FreeSpace } from '../limits/free-space.js';
import { parseTicket, refuseExpired, type HandoffTicket } from '../handoff/ticket.js';
import { HandoffDirHold } from '../handoff/handoff-dir.js';
import { logger } from '../base/log.js';
import { resolveOptions, type ResolvedOptions, type TempFileManagerOptions } from '../root/options.js';
import { ensureSafeRoot, type RootContext } from '../root/root.js';
import { runInScope, TempScope } from '../handles/scope.js';
import { Session, type SessionPlaces } from '../lifetime/session.js';
import { watchThreads } from '../lifetime/threads.js';
import { atExit } from '../owner/registry.js';
import { beatThread, requireBeatThread } from '../owner/beat-thread.js';
import { holdLiveSignal, type LiveHold } from '../owner/live-signal.js';
import { heartbeatFailures } from '../owner/heartbeat-failures.js';
import { processIdentity } from '../owner/process-identity.js';
import { requireDenoAllAccess } from '../base/deno-permissions.js';
import type { WriteSource } from '../write/source.js';
import { attachBackgroundSweep } from '../sweep/background.js';
import { sweepRoot, type SweepOptions, type SweepReport } from '../sweep/sweep.js';
import type { WriteOptions } from '../handles/write.js';
import type { Readable } from 'node:stream';
import { checkStreamHandoffOptions, checkStreamSource, type StreamHandoffOptions } from './stream-handoff.js';
import type { SpoolOptions } from '../handles/spool.js';

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
  /** Beats of this thread that could not refresh their inode (gone, replaced, EACCES, ENOSPC, EIO), each also a `WARN_TEMPFILE_HEARTBEAT` warning and a `heartbeatFail` message saying why (docs/crash-recovery.md). */
  readonly heartbeatFailures: number;
  /** How observers that /proc cannot help judge this manager's owners: `live-signal`, `beat-thread`, or `idle` before its first file or claim (docs/crash-recovery.md). */
  readonly liveness: 'idle' | 'live-signal' | 'beat-thread';
}

const log = logger('manager');

/** What a store built on a manager outside its layers needs: the handles' context and the root's rules. */
export interface ManagerParts {
  readonly context: ManagerContext;
  readonly rootContext: RootContext;
}

/**
 * The port through which a store built on a manager (tempfile-manager/tus) reaches its parts: every
 * manager enters itself when it is made, in a table of this module's, which nothing outside this
 * copy of the library reaches (not `globalThis`: a manager's context there would let any code build
 * handles over paths of its own). Only a manager's constructor enters one: an object that merely
 * looks like a manager is not found; nor is a manager of another copy (the ESM build's, seen from
 * the CommonJS build's store).
 */
const madeManagers = new WeakMap<object, ManagerParts>();

/** The parts of `value` if a manager of this copy of the library made it, else undefined. */
export function managerParts(value: unknown): ManagerParts | undefined {
  return typeof value === 'object' && value !== null ? madeManagers.get(value) : undefined;
}

/**
 * Owns a session under the root and what is made in it, removed with its handles, at `close()`,
 * at exit, or after a crash by a later sweep; the root is shared and never removed.
 * @example
 * const mgr = new TempFileManager({ root: '/var/tmp/myapp' });
 * await using video = mgr.file('.mkv');
 * await pipeline(req, video.createWriteStream());
 */
export class TempFileManager implements AsyncDisposable, Disposable {
  /** The absolute root directory, checked safe when the manager was made. */
  readonly root: string;
  readonly #options: ResolvedOptions;
  readonly #session: Session;
  /** The root and its rules, shared by the session, the sweep and the leases. */
  readonly #rootContext: RootContext;
  /** `<root>/handoff`, held open across handoffs and claims, checked at each. */
  readonly #handoffDir: HandoffDirHold;
  /** `<root>/handoff/` as a backend: where a ticket without `store` lives. */
  readonly #diskHandoff: HandoffBackend;
  /** What a claim needs of this manager: its scope to download into, its rules, whether it closed. */
  readonly #claimPlace: ClaimPlace;
  readonly #context: ManagerContext;
  readonly #rootScope: TempScope;
  /** Removes the exit task of the open session, if any. */
  #dropExitTask: () => void = () => {};
  #opened = false;
  #localDisk: LocalDiskKind | undefined;
  #live: LiveHold | undefined;
  #isClosed = false;
  readonly #stopBackgroundSweep: () => void;

  /**
   * Checks the options and the root (synchronously), making the root (0700) and its marker if
   * missing, both left in place for good. The session directory is made on first use, through the
   * root held open from then on: a root swapped after this point is never written or removed
   * through, and calls then throw {@link RootChangedError}. With the defaults it attaches to the
   * root's background sweeper and the exit hook; {@link close} detaches both.
   *
   * **Security:** an existing root must be a real directory (never followed) owned by this uid and
   * not writable by others; a missing one is made, never its parents (docs/security.md).
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: an unknown option, or one of
   * the wrong type or out of its range (`err.option` names it); `'--allow-worker'` under Node's
   * permission model without it (the beat thread, docs/crash-recovery.md, cannot start);
   * `'--allow-all'` under Deno without all of its permissions (docs/platforms.md).
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: `prefix` is not a safe name part.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: the root is a symlink, not a
   * directory, not yours, writable by others, without a parent, swapped while checked, or of another
   * on-disk format (`err.reason`).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`, {@link DiskQuotaError}
   * `ERR_TEMPFILE_DISK_QUOTA`, {@link FileSystemError} `ERR_TEMPFILE_IO`: the root or its marker
   * cannot be made or opened (full, over quota, EACCES, a read-only file system, Node's permission
   * model without `--allow-fs-write` for the root...).
   */
  constructor(options?: TempFileManagerOptions) {
    requireDenoAllAccess();
    this.#options = resolveOptions(options);
    this.root = this.#options.root;
    requireBeatThread(this.root);
    const rootId = ensureSafeRoot(this.root);
    const { staleMs, graceMs, hostId } = this.#options;
    this.#rootContext = {
      root: this.root,
      staleMs,
      graceMs,
      hostId,
      verifyRoot: () => this.#session.checkRoot(),
      rootBase: () => this.#session.rootBase(),
      holdLive: () => this.#holdLive(),
    };
    this.#session = new Session({ ...this.#rootContext, rootId });
    this.#handoffDir = new HandoffDirHold();
    this.#diskHandoff = new DiskHandoff({
      ...this.#rootContext,
      rootBase: () => this.#session.rootBase(),
      session: () => this.#sessionPlaces(),
      sessionOpened: () => this.#opened,
      handoffDir: this.#handoffDir,
    });
    this.#context = madeContext({
      prefix: this.#options.prefix,
      session: () => this.#sessionPlaces(),
      checkRoot: () => this.#session.check(),
      rootBase: () => this.#session.rootBase(),
      handoff: this.#diskHandoff,
      accounting: new Accounting(this.#options.maxLiveBytes),
      freeSpace: new FreeSpace(this.root, this.#options.minFreeBytes, () => this.#session.places?.base ?? this.#session.rootBase()),
      root: this.root,
      localDisk: () => this.#localDisk,
      closed: () => this.#isClosed,
    });
    this.#rootScope = new TempScope(this.#context);
    madeManagers.set(this, { context: this.#context, rootContext: this.#rootContext });
    this.#claimPlace = { staleMs, hostId, download: (source, writeOptions) => this.#rootScope.write(source, writeOptions), closed: () => this.#isClosed };
    log('manager for %s', this.root);
    if (this.#options.exitHook) {
      watchThreads(this.root, false);
    }
    const { sweepOnStart, sweepIntervalMs } = this.#options;
    const stores = this.#options.stores.filter(isStoreBackend);
    this.#stopBackgroundSweep = attachBackgroundSweep(this.#rootContext, { onStart: sweepOnStart, intervalMs: sweepIntervalMs, stores });
  }

  /** This manager's session directory; created on first use. @throws Never. */
  get sessionPath(): string {
    return this.#session.dir;
  }

  /** True once {@link close} was called. @throws Never. */
  get closed(): boolean {
    return this.#isClosed;
  }

  /** A new empty temp file (0600), synchronously: {@link TempScope.file} in the manager's own scope. @throws See {@link TempScope.file}. */
  file(suffixOrOptions?: NameArgument): TempFile {
    return this.#rootScope.file(suffixOrOptions);
  }

  /** A new empty temp directory (0700), synchronously: {@link TempScope.dir} in the manager's own scope. @throws See {@link TempScope.dir}. */
  dir(suffixOrOptions?: NameArgument): TempDir {
    return this.#rootScope.dir(suffixOrOptions);
  }

  /** Streams `source` into a new temp file under the limits: {@link TempScope.write} in the manager's own scope. @throws See {@link TempScope.write}. */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    return this.#rootScope.write(source, options);
  }

  /**
   * Hands a stream straight to `store`, no local file, checked as by `write()`; the ticket `file.handoff()` gives (docs/s3.md).
   * @throws {@link InvalidOptionError}, {@link SizeLimitError}, {@link TypeNotAcceptedError}, {@link SourceError},
   * {@link AbortedError}, {@link StoreError}, {@link MissingPeerError}, {@link ManagerClosedError} (`ERR_TEMPFILE_*`).
   */
  async handoffStream(source: Readable, options: StreamHandoffOptions): Promise<HandoffTicket> {
    this.#assertOpen();
    const { store, request } = checkStreamHandoffOptions(options, 'handoffStream()');
    const stream = checkStreamSource(source, 'handoffStream()');
    const { ticket } = await store.handOffStream(stream, { ...request, suffixOf: (type) => (type && /^[a-z0-9]{1,16}$/.test(type.ext) ? `.${type.ext}` : '') });
    return ticket;
  }

  /** {@link TempScope.spool} in the manager's own scope. @throws See {@link TempScope.spool}. */
  spool(source: WriteSource, options?: SpoolOptions): Promise<TempFile> {
    return this.#rootScope.spool(source, options);
  }

  /**
   * Holds this thread's live signal on the root from the first owner's heartbeat (a session's lock,
   * a claim) to `close()`; where none can be held, the process's beat thread starts, once.
   */
  #holdLive(): void {
    if (this.#live !== undefined) return;
    let base: string;
    try {
      base = this.#session.rootBase();
    } catch {
      // The root cannot be reached now: the step that called fails on it too, and the next owner
      // to start tries again.
      return;
    }
    this.#live = holdLiveSignal({ root: this.root, base, owner: processIdentity(this.#options.hostId) });
    if (!this.#live.held) beatThread().require(this.#live.why ?? 'no live signal');
  }

  #releaseLive(): void {
    if (this.#live === undefined) return;
    let base: string | undefined;
    try {
      base = this.#session.rootBase();
    } catch {
      base = undefined; // the root is gone or swapped: its name alone, checked to be our FIFO
    }
    this.#live.release(base);
    this.#live = undefined;
  }

  /** Live files and bytes, the quota and the free space seen last; no disk access but a look at each unfinished tus upload this process wrote. @throws Never. */
  stats(): TempFileStats {
    const { accounting, freeSpace } = this.#context;
    accounting.reconcile();
    return {
      liveFiles: accounting.liveFiles,
      liveBytes: accounting.liveBytes,
      maxLiveBytes: accounting.maxLiveBytes,
      quotaLeft: accounting.maxLiveBytes - accounting.liveBytes,
      freeBytes: freeSpace.lastFreeBytes,
      freeCheckedAt: freeSpace.lastCheckedAt,
      minFreeBytes: this.#options.minFreeBytes,
      heartbeatFailures: heartbeatFailures().count,
      liveness: this.#live === undefined ? 'idle' : this.#live.held ? 'live-signal' : 'beat-thread',
    };
  }

  /**
   * Claims a handed-off file by its ticket (the object or its JSON), validated before the disk is
   * touched: takes the entry's lease, refreshed while this process lives, and checks the size (with
   * `verifyDigest`, the digest). Call `consume()` when the job is done; disposing the claim without
   * it RELEASES the entry for a retry. {@link withClaim} does both. A claimer killed outright keeps
   * the entry until its lease goes stale (`staleMs`) (docs/security.md).
   * @example
   * await using claimed = await mgr.claim(job.data.ticket);
   * await transcode(claimed.path);
   * await claimed.consume(); // done; a throw above releases the entry instead
   * @throws {@link BadTicketError} `ERR_TEMPFILE_BAD_TICKET`: not a valid ticket (`err.field`).
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options`.
   * @throws {@link HandoffExpiredError} `ERR_TEMPFILE_HANDOFF_EXPIRED`: past its `expiresAt`.
   * @throws {@link HandoffNotFoundError} `ERR_TEMPFILE_HANDOFF_NOT_FOUND`: consumed, swept, or of
   * another root.
   * @throws {@link AlreadyClaimedError} `ERR_TEMPFILE_ALREADY_CLAIMED`: a live claimer holds it;
   * retry after `err.retryAfterMs`.
   * @throws {@link HandoffMismatchError} `ERR_TEMPFILE_HANDOFF_MISMATCH`: not the file handed off;
   * it is given back untouched.
   * @throws {@link TempFileReplacedError} `ERR_TEMPFILE_REPLACED`: swapped while `verifyDigest` read it.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: `<root>/handoff` is not a safe directory.
   * @throws {@link StoreError} `ERR_TEMPFILE_STORE`: an object store not in `stores`, or failing.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the disk failing.
   */
  async claim(ticket: HandoffTicket | string, options?: ClaimOptions): Promise<ClaimedFile> {
    this.#assertOpen();
    // The ticket and the options are checked once, here, before any backend is asked.
    const parsed = parseTicket(ticket);
    const checked = checkClaimOptions(options);
    const backend = this.#backendOf(parsed);
    refuseExpired(parsed);
    return traced(
      TRACING_CHANNELS.claim,
      () => ({ root: this.root, handoff: handoffKey(parsed.id) }),
      async () => new ClaimedFile(await backend.claim(parsed, this.#claimPlace, checked), parsed),
      (claimed) => ({ size: claimed.size }),
    );
  }

  /**
   * Claims the ticket's entry, runs `fn` with the claim, and resolves with what `fn` returns once
   * the entry is consumed. If `fn` throws, the entry is RELEASED for the job's retry and the error
   * rethrown (a failed release attached as `err.releaseError`); if the consume fails, the entry is
   * released and the consume's error rejects. `fn` may end the claim itself (`keep()`), and must not
   * keep `claimed` or its path past its promise.
   *
   * @example
   * // in a queue's job handler: a throw leaves the upload for the retry
   * await mgr.withClaim(job.data.ticket, (claimed) => transcode(claimed.path));
   * @throws Whatever `fn` throws, unchanged, and what {@link claim} throws (then `fn` is not called).
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `fn` is not a function.
   * @throws What `ClaimedFile.consume()` throws, once `fn` resolved. Through an object store the data
   * may be gone already: a retry gets {@link HandoffNotFoundError}.
   */
  withClaim<T>(ticket: HandoffTicket | string, fn: (claimed: ClaimedFile) => T | PromiseLike<T>, options?: ClaimOptions): Promise<T> {
    return runClaimed(() => this.claim(ticket, options), fn);
  }

  /**
   * Removes what dead processes left under the root: orphaned sessions (lock stale and, on this
   * host, process gone) with their files, and handoff entries expired or left over; with `stores`,
   * each store too (not in a dry run). Never touches a live or young session, never leaves the root,
   * never follows a symlink or crosses a mount point (docs/security.md). What it cannot remove is
   * reported (`foreign`, `errors`, `left`, `stores`), never a rejection.
   *
   * @throws Whatever `onProgress` throws, unchanged.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options`.
   * @throws {@link UnsafeRootError} `ERR_TEMPFILE_UNSAFE_ROOT`: no root marker (or another format's),
   * or `<root>/handoff` is not a safe directory.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the disk failing.
   */
  async sweep(options?: SweepOptions): Promise<SweepReport> {
    this.#assertOpen();
    const report = await sweepRoot(this.#rootContext, options);
    const stores = this.#options.stores.filter(isStoreBackend);
    if (stores.length === 0 || report.dryRun) return report;
    const swept = await sweepStores(stores, this.#options.staleMs);
    return { ...report, stores: swept };
  }

  /** A scope removed with what is made through it when it is disposed ({@link TempScope.scope}). @throws See {@link TempScope.scope}. */
  scope(): TempScope {
    this.#assertOpen();
    return this.#rootScope.scope();
  }

  /** Runs `fn` with a new scope, removed when `fn` settles ({@link TempScope.withScope}). @throws See {@link TempScope.withScope}. */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes the session directory with everything still in it, through the directories held open,
   * never following a symlink or crossing into a mount point. Idempotent, even after a failure
   * (what is left is for a sweep). From the call on the manager makes nothing: its handles are
   * disposed, writes aborted, a `keep()` in flight rejects with {@link ManagerClosedError}, and the
   * background sweeper and the exit hook are detached. What was kept or handed off stays.
   *
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root or the session was
   * swapped: its files went through the directory held open (where /proc lets it), nothing else.
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: a mount point was left in place.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: a path could not be removed (EACCES, EBUSY...).
   */
  async close(): Promise<void> {
    // Before the root's descriptor goes: the signal's name is removed through it.
    if (!this.#beginClose()) {
      this.#releaseLive();
      this.#session.release();
      return;
    }
    this.#releaseLive();
    try {
      await this.#session.close();
    } finally {
      this.#dropExitTask();
    }
  }

  /** Synchronous {@link close}, for exit paths and `using`. @throws What {@link close} throws. */
  closeSync(): void {
    // Before the root's descriptor goes: the signal's name is removed through it.
    if (!this.#beginClose()) {
      this.#releaseLive();
      this.#session.release();
      return;
    }
    this.#releaseLive();
    try {
      this.#session.closeSync();
    } finally {
      this.#dropExitTask();
    }
  }

  /** Same as {@link close}, for `await using`. @throws What {@link close} throws. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Same as {@link closeSync}, for `using`. @throws What {@link close} throws. */
  [Symbol.dispose](): void {
    this.closeSync();
  }

  /** Marks the manager closed; true when there is a session left to remove. */
  #beginClose(): boolean {
    if (this.#isClosed) return false;
    this.#isClosed = true;
    this.#handoffDir.close();
    this.#stopBackgroundSweep();
    this.#rootScope.abandon();
    log('closing %s', this.#session.dir);
    return this.#opened;
  }

  #sessionPlaces(): SessionPlaces {
    this.#assertOpen();
    const open = this.#session.places;
    if (this.#opened && open) return open;
    if (!this.#opened) {
      const places = this.#session.open();
      try {
        ensureCapabilities(this.root, places.base);
      } catch (err) {
        this.#releaseLive();
        try {
          this.#session.closeSync();
        } catch {
          // the probe's failure is the one to report
        }
        throw err;
      }
      this.#opened = true;
      this.#localDisk = localDiskKind(places.base);
      if (this.#options.exitHook) this.#dropExitTask = atExit(() => this.#closeOnExit());
      if (this.#options.exitHook) watchThreads(this.root, true);
    }
    const places = this.#session.places;
    if (!places) throw new ManagerClosedError();
    return places;
  }

  #closeOnExit(): void {
    this.#isClosed = true;
    this.#handoffDir.close();
    this.#releaseLive();
    this.#session.closeSync();
  }

  /**
   * The backend a ticket lives in: `<root>/handoff/`, or the store of `stores` at the ticket's
   * bucket and prefix.
   */
  #backendOf(ticket: HandoffTicket): HandoffBackend {
    const location = ticket.store;
    if (location === undefined) return this.#diskHandoff;
    // The core checked the location's shape; a store of its kind checks its own fields (an S3
    // bucket's rules), then the store of that very location is looked for.
    const stores = this.#options.stores.filter(isStoreBackend);
    const parsed = stores.find((candidate) => candidate.location.kind === location.kind)?.parseLocation(location) ?? location;
    const store = stores.find((candidate) => sameLocation(candidate.location, parsed));
    if (!store) {
      // A kind is also the name of its entry point (tempfile-manager/s3, tempfile-manager/azure).
      throw new StoreError(
        'not-configured',
        `The ticket of handoff ${handoffKey(ticket.id)} lives in the ${describeLocation(location)}, and this manager was given no store for it: ` +
          `make one there with the store factory of tempfile-manager/${location.kind} and pass it in new TempFileManager({ stores: [store] }).`,
      );
    }
    return store;
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new ManagerClosedError();
  }
}
