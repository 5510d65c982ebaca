import type { ManagerContext, Owner, Removable } from '../context.js';
import { createDir, createFile, type NameArgument } from './create.js';
import type { TempDir } from './dir.js';
import { DisposedError, isErrorCode, ManagerClosedError, RemoveError, TempFileError } from '../errors.js';
import { validateCallback } from '../validators.js';
import { makeTempFile, type FileMaker, type TempFile } from './file.js';
import type { WriteSource } from '../write/source.js';
import { writeTempFile, type SuffixOf, type WriteOptions } from './write.js';

/**
 * A group of temp files, directories and nested scopes, removed together when the scope is
 * disposed. Removal runs in parallel and goes on past failures: every failure is collected into
 * one {@link RemoveError}. Make one with `mgr.scope()` or `scope.scope()`.
 *
 * **Ownership:** the scope owns what is made through it (files, directories, nested scopes,
 * writes in flight) until each is removed, kept or handed off; disposing the scope removes what
 * is left. A scope not disposed is removed with its manager's session, at `close()` or exit.
 *
 * @example
 * await using job = mgr.scope();
 * const input = job.file('.mkv');
 * const frames = job.dir();
 * // both removed here
 */
export class TempScope implements AsyncDisposable, Disposable {
  /** @internal */
  protected readonly context: ManagerContext;
  private readonly members = new Set<Removable>();
  private readonly parent: Owner | undefined;
  private live = true;
  private abandoned = false;
  // Aborts this scope's writes still in flight when it is disposed: their sources are stopped
  // and their descriptors closed, instead of waiting on a source that may never end.
  private readonly writes = new AbortController();
  /** Writes of this scope not settled yet: a scope with none is disposed without an abort (no error built). */
  private writing = 0;
  private onWriteFailure: ((source: WriteSource, error: unknown) => void) | undefined;

  /** @internal */
  constructor(context: ManagerContext, parent?: Owner) {
    this.context = context;
    this.parent = parent;
    parent?.adopt(this);
  }

  /**
   * True once the scope was disposed or its manager closed.
   * @throws Never. It reads the scope's state.
   */
  get disposed(): boolean {
    return !this.live;
  }

  /**
   * How many live files, directories and scopes this scope holds directly.
   * @throws Never. It counts the scope's members in memory.
   */
  get size(): number {
    return this.members.size;
  }

  /**
   * A new empty temp file (0600) owned by this scope. Synchronous. See `TempFileManager.file`.
   *
   * **Ownership:** the returned {@link TempFile} owns the file, and this scope owns the handle:
   * the file is removed when the handle or the scope is disposed, whichever comes first.
   *
   * **Security:** as `TempFileManager.file`: hand `file.path` to another program only while the
   * handle is live.
   *
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the prefix or suffix is not a
   * safe single name part, or the name would be too long; checked before the disk is touched.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the scope was disposed or removed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the scope's manager was
   * closed.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was renamed, removed or replaced since the manager started.
   * @throws {@link UnsupportedFileSystemError} `ERR_TEMPFILE_UNSUPPORTED_FS`: at the session's
   * first use, the root's file system lacks a primitive the guarantees rest on.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the file system is full (ENOSPC).
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota is exhausted
   * (EDQUOT).
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system
   * (EACCES, EMFILE, EIO...; `err.syscallCode` says which).
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    this.assertLive();
    return createFile(this.context, this, suffixOrOptions);
  }

  /**
   * A new empty temp directory (0700) owned by this scope. Synchronous. See `TempFileManager.dir`.
   *
   * **Ownership:** the returned {@link TempDir} owns the directory and its tree, and this scope
   * owns the handle: the tree is removed when the handle or the scope is disposed, whichever
   * comes first.
   *
   * **Security:** as `TempFileManager.dir`: the tree is removed without following a symlink or
   * crossing into a mount point.
   *
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the prefix or suffix is not a
   * safe single name part, or the name would be too long; checked before the disk is touched.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the scope was disposed or removed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the scope's manager was
   * closed.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was renamed, removed or replaced since the manager started.
   * @throws {@link UnsupportedFileSystemError} `ERR_TEMPFILE_UNSUPPORTED_FS`: at the session's
   * first use, the root's file system lacks a primitive the guarantees rest on.
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE`: the file system is full (ENOSPC).
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA`: this user's disk quota is exhausted
   * (EDQUOT).
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system
   * (EACCES, EMFILE, EIO...; `err.syscallCode` says which).
   */
  dir(suffixOrOptions?: NameArgument): TempDir {
    this.assertLive();
    return createDir(this.context, this, suffixOrOptions);
  }

  /**
   * Streams `source` into a new temp file owned by this scope. See `TempFileManager.write`.
   *
   * **Ownership:** as `TempFileManager.write`, and the scope owns the handle. Disposing the scope
   * while the write streams aborts it: the source is stopped, the partial file removed, and the
   * write rejects with an {@link AbortedError}.
   *
   * **Security:** as `TempFileManager.write`.
   *
   * Every failure is a rejection (nothing is thrown synchronously).
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the scope was disposed or removed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the scope's manager was
   * closed.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not an object,
   * has an unknown key or a bad value, or `source` is not a source; nothing is read.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the `prefix` or `suffix` is not a
   * safe single name part; nothing is read.
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413): the source has more than
   * `maxBytes` bytes.
   * @throws {@link QuotaExceededError} `ERR_TEMPFILE_QUOTA_EXCEEDED` (507): the manager's live
   * files would hold more than `maxLiveBytes`.
   * @throws {@link TypeNotAcceptedError} `ERR_TEMPFILE_TYPE_NOT_ACCEPTED` (415): with `accept`, the
   * first bytes are of no type it lists; no file was made.
   * @throws {@link AbortedError} `ERR_TEMPFILE_ABORTED` (499): the `signal` fired, this scope was
   * disposed or the manager closed, or the source (a client) went away.
   * @throws {@link SourceError} `ERR_TEMPFILE_SOURCE` (400): the source failed, or produced
   * something that is not bytes or text.
   * @throws {@link CallbackError} `ERR_TEMPFILE_CALLBACK`: `onProgress` threw (`err.cause`).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE` (507): the file system is full (ENOSPC),
   * or the write would leave less than `minFreeBytes` free.
   * @throws {@link DiskQuotaError} `ERR_TEMPFILE_DISK_QUOTA` (507): this user's disk quota is
   * exhausted (EDQUOT).
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was renamed, removed or replaced since the manager started.
   * @throws {@link UnsupportedFileSystemError} `ERR_TEMPFILE_UNSUPPORTED_FS`: at the session's
   * first use, the root's file system lacks a primitive the guarantees rest on.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: any other failure of the file system
   * (EMFILE, EIO...; `err.syscallCode` says which).
   */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    return this.writeAs(source, options, makeTempFile);
  }

  /**
   * {@link write}, with the file made by `make`: an adapter's subclass of {@link TempFile} (an
   * upload's file, with its field and client-given name). The adapters' way to build their files
   * from the core, documented in docs/design.md. `suffixOf`, when given, names the file's suffix
   * from the type sniffed from its first bytes (an upload's file gets the extension of its type);
   * the data is then sniffed, `accept` or not. @internal
   */
  writeAs<T extends TempFile>(source: WriteSource, options: WriteOptions | undefined, make: FileMaker<T>, suffixOf?: SuffixOf): Promise<T> {
    try {
      this.assertLive();
    } catch (err) {
      return Promise.reject(err);
    }
    this.writing += 1;
    const written = writeTempFile(this.context, this, source, options, this.writes.signal, make, suffixOf);
    const watched: Promise<T> = this.onWriteFailure ? written.catch((error: unknown) => this.failed(source, error)) : written;
    return watched.finally(() => {
      this.writing -= 1;
    });
  }

  /**
   * Called when a write() of this scope rejects, before the caller sees the rejection: the
   * Express adapter drops the rest of a request body that a route's `req.tmp.write(req)` gave up
   * on. One listener per scope. @internal
   */
  watchWriteFailures(listener: (source: WriteSource, error: unknown) => void): void {
    this.onWriteFailure = listener;
  }

  private failed(source: WriteSource, error: unknown): never {
    try {
      this.onWriteFailure?.(source, error);
    } catch {
      // the write's own failure is the one to report
    }
    throw error;
  }

  /**
   * A nested scope, removed with this one (or before it).
   *
   * **Ownership:** the returned {@link TempScope} owns what is made through it, and this scope
   * owns it: disposing this scope removes the nested one too. Making it touches no disk.
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: the scope was disposed or removed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the scope's manager was
   * closed.
   */
  scope(): TempScope {
    this.assertLive();
    return new TempScope(this.context, this);
  }

  /**
   * Runs `fn` with a new nested scope and removes that scope's files when `fn` settles: the way
   * to scope files without `using`. See `TempFileManager.withScope`.
   *
   * **Ownership:** the nested scope and its files live only while `fn` runs: return what they
   * hold, never a handle or a path of theirs.
   *
   * Every failure is a rejection; beyond the classes below, it rejects with whatever `fn` throws,
   * unchanged (a failed removal is then attached to it as `err.removeError`).
   *
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `fn` is not a function
   * (before the scope is made).
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: this scope was disposed (`fn` is not
   * called).
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed (`fn`
   * is not called).
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: `fn` resolved, but some of the
   * nested scope's paths could not be removed (`err.errors` lists each).
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: `fn` resolved, but the root's
   * path or the session directory was swapped since the manager started: nothing was removed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: `fn` resolved, but checking the root before
   * the removal failed (EIO, EMFILE...); nothing was removed.
   */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes every member in parallel. Rejects with one {@link RemoveError} holding every
   * failure; the members that failed stay in the scope so that a second call retries them.
   *
   * **Ownership:** from the call on the scope makes nothing more, and its writes in flight are
   * aborted (each removes its partial file). Once it resolves the scope owns nothing; a member
   * kept or handed off before is not touched.
   *
   * **Security:** each member is removed as its own `remove()` does: links as links, trees
   * without following a symlink or crossing into a mount point (docs/security.md, "A process of
   * the same uid, point by point").
   *
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was swapped since the manager started: nothing is removed, and
   * the members stay for the manager's `close()`.
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: some members could not be removed;
   * `err.errors` holds every failure (a {@link FileSystemError}, a {@link MountPointError}...),
   * and those members stay in the scope.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: checking the root before the removal failed
   * (EIO, EMFILE...): nothing is removed, and the members stay.
   */
  async remove(): Promise<void> {
    this.live = false;
    this.stopWrites();
    if (this.members.size > 0) this.context.checkRoot();
    const members = [...this.members];
    const results = await Promise.allSettled(members.map((member) => member.remove()));
    const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    this.finish(failures);
  }

  /**
   * Synchronous {@link remove}: one member after another, still collecting every failure. It owns
   * and removes as {@link remove} does; a member whose async `remove()`, `keep()` or `handoff()`
   * is in flight is left to it.
   *
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root's path, or the
   * manager's session directory, was swapped since the manager started: nothing is removed, and
   * the members stay for the manager's `close()`.
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: some members could not be removed;
   * `err.errors` holds every failure (a {@link FileSystemError}, a {@link MountPointError}...),
   * and those members stay in the scope.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: checking the root before the removal failed
   * (EIO, EMFILE...): nothing is removed, and the members stay.
   */
  removeSync(): void {
    this.live = false;
    this.stopWrites();
    if (this.members.size > 0) this.context.checkRoot();
    const failures: unknown[] = [];
    for (const member of [...this.members]) {
      try {
        member.removeSync();
      } catch (err) {
        failures.push(err);
      }
    }
    this.finish(failures);
  }

  /**
   * Same as {@link remove}: `await using` calls it at the end of the scope.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: as {@link remove}.
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: as {@link remove}.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: as {@link remove}.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /**
   * Same as {@link removeSync}: `using` calls it at the end of the scope.
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: as {@link removeSync}.
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: as {@link removeSync}.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: as {@link removeSync}.
   */
  [Symbol.dispose](): void {
    this.removeSync();
  }

  /** @internal */
  adopt(handle: Removable): void {
    this.members.add(handle);
  }

  /** @internal */
  forget(handle: Removable): void {
    this.members.delete(handle);
  }

  /** @internal */
  abandon(): void {
    this.live = false;
    this.abandoned = true;
    this.stopWrites();
    for (const member of this.members) member.abandon();
    this.members.clear();
    this.parent?.forget(this);
  }

  private stopWrites(): void {
    if (this.writing > 0 && !this.writes.signal.aborted) this.writes.abort(new DisposedError('TempScope'));
  }

  /** @internal */
  protected assertLive(): void {
    if (this.abandoned) throw new ManagerClosedError();
    if (!this.live) throw new DisposedError('TempScope');
  }

  private finish(failures: unknown[]): void {
    if (failures.length === 0) {
      this.parent?.forget(this);
      return;
    }
    throw new RemoveError(failures.flatMap(flattenRemoveErrors));
  }
}

/**
 * Runs `fn` with the scope `open()` makes, then removes the scope. After a success a removal
 * failure rejects (a {@link RemoveError}); after a throw the original is rethrown, with the
 * removal failure attached as its `removeError` when it is an object that can take one.
 * @internal
 */
export async function runInScope<T>(open: () => TempScope, fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
  validateCallback(fn, 'withScope()', '`async (scope) => { ... }`');
  const scope = open();
  let result: T;
  try {
    result = await fn(scope);
  } catch (error) {
    await scope.remove().catch((removeError: unknown) => attachRemoveError(error, removeError));
    throw error;
  }
  await scope.remove();
  return result;
}

function attachRemoveError(error: unknown, removeError: unknown): void {
  if (typeof error !== 'object' || error === null || !Object.isExtensible(error) || 'removeError' in error) return;
  Object.defineProperty(error, 'removeError', { value: removeError, enumerable: false, configurable: true, writable: true });
}

function flattenRemoveErrors(err: unknown): Error[] {
  if (isErrorCode(err, 'ERR_TEMPFILE_REMOVE_FAILED') && err.errors) return [...err.errors];
  if (err instanceof Error) return [err];
  return [new TempFileError('ERR_TEMPFILE_IO', String(err))];
}
