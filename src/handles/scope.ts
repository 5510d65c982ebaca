import type { ManagerContext, Owner, Removable } from '../context/context.js';
import { createDir, createFile, type NameArgument } from './create.js';
import type { TempDir } from './dir.js';
import { DisposedError, isErrorCode, ManagerClosedError, RemoveError, TempFileError, type DiskErrors } from '../base/errors.js';
import { validateCallback } from '../base/validators.js';
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
   * A new empty temp file (mode 0600, created O_CREAT|O_EXCL|O_NOFOLLOW), synchronously, owned by
   * this scope (`mgr.file()`: by the manager's own scope). The name is the prefix, 128 random bits
   * in hex, and the suffix.
   *
   * **Ownership:** the returned {@link TempFile} owns the file, and the scope owns the handle: the
   * file is removed when the handle or the scope is disposed or removed, whichever comes first,
   * else when the manager closes or the process exits (`exitHook`), else, after a crash, by a
   * later sweep. `keep()` and `handoff()` move it out of the handle's ownership.
   *
   * **Security:** the name cannot be guessed, a name that exists is never reused, and the file is
   * 0600 whatever the umask. Hand `file.path` to another program only while the handle is live:
   * it names the file through the root's path, and after a swap of the root by a process of this
   * uid it names whatever is there (docs/security.md: the limits of "Nothing outside the root is
   * touched").
   *
   * @param suffixOrOptions A suffix such as `'.mkv'`, or `{ prefix, suffix }`.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the prefix or suffix is not a
   * safe single name part, or the name would be too long; checked before the disk is touched.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed
   * or removed.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the file system
   * unsupported, full, over quota or failing.
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    this.assertLive();
    return createFile(this.context, this, suffixOrOptions);
  }

  /**
   * A new empty temp directory (mode 0700), synchronously, owned by this scope (`mgr.dir()`: by
   * the manager's own scope). Disposal removes the whole tree.
   *
   * **Ownership:** the returned {@link TempDir} owns the directory and everything put in it, and
   * the scope owns the handle: the whole tree is removed when the handle or the scope is disposed
   * or removed, whichever comes first, else when the manager closes or the process exits
   * (`exitHook`), else, after a crash, by a later sweep.
   *
   * **Security:** what other programs put in the directory is removed without following a
   * symlink and without crossing into a mount point; a mount point is left in place and reported
   * (docs/security.md, "A process of the same uid, point by point").
   *
   * @param suffixOrOptions A suffix, or `{ prefix, suffix }`.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the prefix or suffix is not a
   * safe single name part, or the name would be too long; checked before the disk is touched.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed
   * or removed.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the file system
   * unsupported, full, over quota or failing.
   */
  dir(suffixOrOptions?: NameArgument): TempDir {
    this.assertLive();
    return createDir(this.context, this, suffixOrOptions);
  }

  /**
   * Streams `source` into a new temp file owned by this scope (`mgr.write()`: by the manager's own
   * scope) in constant memory, and resolves when every byte is on disk. On a size limit, quota,
   * abort, source or disk failure the source is stopped, the partial file is removed, and a typed
   * error is thrown; the manager keeps working.
   *
   * **Ownership:** the resolved {@link TempFile} owns the file, as one from {@link file} does, and
   * the scope owns the handle; until it resolves the write owns the file, and removes it on any
   * failure (nothing is kept). Disposing the scope while the write streams aborts it: the source
   * is stopped, the partial file removed, and the write rejects with an {@link AbortedError}. The
   * bytes count against `maxLiveBytes` until the file is removed, kept or handed off.
   *
   * **Security:** the file is made as {@link file} makes one (an unguessable name, 0600,
   * `O_CREAT | O_EXCL | O_NOFOLLOW`); hand its path to another program only while the handle is
   * live, as for {@link file}. With `accept`, the type is found from the first bytes, never from a
   * name or a client's header, and a refused type leaves nothing on disk
   * (docs/streaming-writes.md).
   *
   * Every failure is a rejection (nothing is thrown synchronously), and each carries its HTTP
   * status as `err.statusCode`.
   *
   * @example
   * const upload = await mgr.write(req, { suffix: '.mkv', maxBytes: 2 ** 31, hash: 'sha256' });
   * console.log(upload.size, upload.digest);
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `options` is not an object,
   * has an unknown key or a bad value (`maxBytes`, `signal`, `onProgress`, `hash`, `accept`), or
   * `source` is not a source; nothing is read.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: the `prefix` or `suffix` is not a
   * safe single name part; nothing is read.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed
   * or removed.
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413): the source has more than
   * `maxBytes` bytes.
   * @throws {@link QuotaExceededError} `ERR_TEMPFILE_QUOTA_EXCEEDED` (507): the manager's live
   * files would hold more than `maxLiveBytes`.
   * @throws {@link TypeNotAcceptedError} `ERR_TEMPFILE_TYPE_NOT_ACCEPTED` (415): with `accept`, the
   * first bytes are of no type it lists; no file was made.
   * @throws {@link AbortedError} `ERR_TEMPFILE_ABORTED` (499): the `signal` fired, the scope was
   * disposed or the manager closed, or the source (a client) went away.
   * @throws {@link SourceError} `ERR_TEMPFILE_SOURCE` (400): the source failed, or produced
   * something that is not bytes or text.
   * @throws {@link CallbackError} `ERR_TEMPFILE_CALLBACK`: `onProgress` threw (`err.cause`).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE` (507): also when the write would leave
   * less than `minFreeBytes` free.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the file system
   * unsupported, full, over quota or failing.
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
   * A nested scope (`mgr.scope()`: a scope of the manager's own): files, directories and nested
   * scopes removed together when it is disposed, and with this one (or before it).
   *
   * **Ownership:** the returned {@link TempScope} owns what is made through it, and this scope
   * owns it: disposing this scope removes the nested one too; a scope not disposed is removed as
   * any handle of the manager is (when the manager closes, at exit, or by a later sweep). Making
   * it touches no disk.
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed
   * or removed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed.
   */
  scope(): TempScope {
    this.assertLive();
    return new TempScope(this.context, this);
  }

  /**
   * Runs `fn` with a new nested scope and removes that scope's files, directories and nested
   * scopes when `fn` settles: the way to scope files without `using` (plain JavaScript on Node 20
   * and 22). Resolves with what `fn` returns, once its files are gone.
   *
   * - `fn` throws or rejects: the files are removed and the same error is rethrown. If removing
   *   failed too, that error (a {@link RemoveError}, or a {@link RootChangedError}) is attached to
   *   the error as `err.removeError`; the error `fn` threw is never replaced.
   * - `fn` succeeds but a file cannot be removed: rejects with a {@link RemoveError} listing every
   *   path that could not be removed.
   *
   * **Ownership:** the scope and its files live only while `fn` runs: return what they hold
   * (their content, a kept path), never a handle or a path of theirs.
   *
   * Every failure is a rejection; beyond the classes below, it rejects with whatever `fn` throws,
   * unchanged.
   *
   * @example
   * const pages = await mgr.withScope(async (scope) => {
   *   const upload = await scope.write(req, { suffix: '.pdf', maxBytes: 50 * 1024 ** 2 });
   *   const out = scope.dir();
   *   await renderPages(upload.path, out.path);
   *   return countPages(out.path);
   * }); // the upload and the directory are gone here, on return and on throw
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `fn` is not a function
   * (before the scope is made).
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed
   * (`fn` is not called).
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed (`fn`
   * is not called).
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: `fn` resolved, but some of the
   * scope's paths could not be removed (`err.errors` lists each).
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: `fn` resolved, but the root's
   * path or the session directory was swapped since the manager started: nothing was removed, and
   * the files stay for the manager's `close()`.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: `fn` resolved, but checking the root before
   * the removal failed (EIO, EMFILE...); the files stay for a later removal.
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
