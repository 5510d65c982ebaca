import { requireMadeContext, type ManagerContext, type Owner, type Removable } from '../context/context.js';
import { createDir, createFile, type NameArgument } from './create.js';
import type { TempDir } from './dir.js';
import { DisposedError, isErrorCode, ManagerClosedError, RemoveError, TempFileError, type DiskErrors } from '../base/errors.js';
import { validateCallback } from '../base/validators.js';
import { Stopper } from '../base/stopper.js';
import { makeTempFile, type FileMaker, type TempFile } from './file.js';
import type { WriteSource } from '../write/source.js';
import { writeTempFile, type SuffixOf, type WriteOptions } from './write.js';
import { spoolTempFile, type SpoolOptions } from './spool.js';

let writeAsIn: <T extends TempFile>(scope: TempScope, source: WriteSource, options: WriteOptions | undefined, make: FileMaker<T>, suffixOf?: SuffixOf) => Promise<T>;

/**
 * {@link TempScope.write}, with the file made by `make`: an adapter's file (an upload's, with its
 * field and client-given name). The adapters' way to build their files from the core, documented in
 * docs/design.md; a function of this module's, not a method: `make` is given the manager's
 * context, which no caller may reach. `suffixOf`, when given, names the file's suffix from the type
 * sniffed from its first bytes. @internal
 */
export function writeAs<T extends TempFile>(scope: TempScope, source: WriteSource, options: WriteOptions | undefined, make: FileMaker<T>, suffixOf?: SuffixOf): Promise<T> {
  return writeAsIn(scope, source, options, make, suffixOf);
}

/**
 * A group of temp files, directories and nested scopes, removed together when it is disposed
 * (in parallel, past failures: one {@link RemoveError} holds them all). It owns what is made
 * through it until each is removed, kept or handed off; a scope not disposed goes with its
 * manager's session. Make one with `mgr.scope()` or `scope.scope()`.
 *
 * @example
 * await using job = mgr.scope();
 * const input = job.file('.mkv');
 * const frames = job.dir();
 * // both removed here
 */
export class TempScope implements AsyncDisposable, Disposable {
  // Runtime-private: no caller reaches the manager's context through a scope (docs/security.md).
  readonly #context: ManagerContext;
  readonly #members = new Set<Removable>();
  readonly #parent: Owner | undefined;
  #live = true;
  #abandoned = false;
  // Aborts this scope's writes still in flight when it is disposed: their sources are stopped
  // and their descriptors closed, instead of waiting on a source that may never end.
  readonly #writes = new Stopper();
  /** Writes of this scope not settled yet: a scope with none is disposed without an abort (no error built). */
  #writing = 0;
  #onWriteFailure: ((source: WriteSource, error: unknown) => void) | undefined;

  static {
    writeAsIn = (scope, source, options, make, suffixOf) => scope.#writeAs(source, options, make, suffixOf);
  }

  /** Built only over a context a manager made: a caller's `new TempScope(...)` is a TypeError. @internal */
  constructor(context: ManagerContext, parent?: Owner) {
    requireMadeContext(context, 'TempScope');
    this.#context = context;
    this.#parent = parent;
    parent?.adopt(this);
  }

  /** True once the scope was disposed or its manager closed. @throws Never. */
  get disposed(): boolean {
    return !this.#live;
  }

  /** How many live files, directories and scopes this scope holds directly. @throws Never. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * A new empty temp file (mode 0600, `O_CREAT | O_EXCL | O_NOFOLLOW`), synchronously, owned by
   * this scope (`mgr.file()`: by the manager's own scope). Its name is the prefix, 128 random bits
   * in hex, and the suffix.
   *
   * **Ownership:** the {@link TempFile} owns the file, and the scope the handle: the file goes when
   * either is disposed, else when the manager closes or the process exits, else, after a crash, at a
   * later sweep. `keep()` and `handoff()` move it out.
   *
   * **Security:** hand `file.path` to another program only while the handle is live: after a swap of
   * the root it names whatever is there (docs/security.md).
   *
   * @param suffixOrOptions A suffix such as `'.mkv'`, or `{ prefix, suffix }`.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: a bad prefix or suffix.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the disk failing.
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    this.assertLive();
    return createFile(this.#context, this, suffixOrOptions);
  }

  /**
   * A new empty temp directory (mode 0700), synchronously, owned by this scope (`mgr.dir()`: by
   * the manager's own scope) as a file from {@link file} is; the whole tree goes with it.
   *
   * @param suffixOrOptions A suffix, or `{ prefix, suffix }`.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: a bad prefix or suffix.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the disk failing.
   */
  dir(suffixOrOptions?: NameArgument): TempDir {
    this.assertLive();
    return createDir(this.#context, this, suffixOrOptions);
  }

  /**
   * Streams `source` into a new temp file owned by this scope (`mgr.write()`: by the manager's own
   * scope) in constant memory, made as {@link file} makes one; resolves when every byte is on disk.
   * On a limit, an abort, a source or disk failure the source is stopped, the partial file removed,
   * and a typed error (with `err.statusCode`) rejects. Disposing the scope aborts it. The bytes count
   * against `maxLiveBytes` until the file is removed, kept or handed off. With `accept`, the type is
   * found from the first bytes, never from a name or a header (docs/streaming-writes.md).
   * @example
   * const upload = await mgr.write(req, { suffix: '.mkv', maxBytes: 2 ** 31, hash: 'sha256' });
   * console.log(upload.size, upload.digest);
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: bad `options` or `source`.
   * @throws {@link InvalidNameError} `ERR_TEMPFILE_INVALID_NAME`: a bad prefix or suffix.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed.
   * @throws {@link SizeLimitError} `ERR_TEMPFILE_SIZE_LIMIT` (413): more than `maxBytes` bytes.
   * @throws {@link QuotaExceededError} `ERR_TEMPFILE_QUOTA_EXCEEDED` (507): past `maxLiveBytes`.
   * @throws {@link TypeNotAcceptedError} `ERR_TEMPFILE_TYPE_NOT_ACCEPTED` (415): not a type `accept` lists.
   * @throws {@link AbortedError} `ERR_TEMPFILE_ABORTED` (499): the `signal`, the scope, the manager or the client ended it.
   * @throws {@link VerifyRefusedError} (422) or {@link VerifyFailedError} (503): `verify` refused the file, or failed.
   * @throws {@link SourceError} `ERR_TEMPFILE_SOURCE` (400): the source failed, or gave no bytes.
   * @throws {@link CallbackError} `ERR_TEMPFILE_CALLBACK`: `onProgress` threw (`err.cause`).
   * @throws {@link NoSpaceError} `ERR_TEMPFILE_NO_SPACE` (507): also below `minFreeBytes` free.
   * @throws See {@link DiskErrors}: the manager closed, the root changed, the disk failing.
   */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    return this.#writeAs(source, options, makeTempFile);
  }

  /**
   * {@link write}, with up to `maxMemory` bytes kept in memory until a file is needed (docs/streaming-writes.md).
   * @throws What {@link write} throws; {@link InvalidOptionError} for a bad `maxMemory`.
   */
  spool(source: WriteSource, options?: SpoolOptions): Promise<TempFile> {
    try {
      this.assertLive();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#writing += 1;
    return spoolTempFile(this.#context, this, source, options, this.#writes).finally(() => {
      this.#writing -= 1;
    });
  }

  #writeAs<T extends TempFile>(source: WriteSource, options: WriteOptions | undefined, make: FileMaker<T>, suffixOf?: SuffixOf): Promise<T> {
    try {
      this.assertLive();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#writing += 1;
    const written = writeTempFile(this.#context, this, source, options, this.#writes, make, suffixOf);
    const onFailure = this.#onWriteFailure; // this write's, even once the scope is removed and forgets it
    const watched: Promise<T> = onFailure ? written.catch((error: unknown) => failed(onFailure, source, error)) : written;
    return watched.finally(() => {
      this.#writing -= 1;
    });
  }

  /**
   * Called when a write() of this scope rejects, before the caller sees the rejection: the
   * Express adapter drops the rest of a request body that a route's `req.tmp.write(req)` gave up
   * on. One listener per scope. @internal
   */
  watchWriteFailures(listener: (source: WriteSource, error: unknown) => void): void {
    this.#onWriteFailure = listener;
  }


  /**
   * A nested scope (`mgr.scope()`: a scope of the manager's own), removed with this one or before
   * it; a scope not disposed goes with the manager's session. Making it touches no disk.
   *
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`: a scope made by `scope()` was disposed.
   * @throws {@link ManagerClosedError} `ERR_TEMPFILE_MANAGER_CLOSED`: the manager was closed.
   */
  scope(): TempScope {
    this.assertLive();
    return new TempScope(this.#context, this);
  }

  /**
   * Runs `fn` with a new nested scope and removes what it made when `fn` settles: scoped files
   * without `using`. Resolves with what `fn` returns once its files are gone; if `fn` throws, the
   * same error is rethrown (a failed removal attached as `err.removeError`). Return what the files
   * hold (their content, a kept path), never a handle or a path of theirs.
   *
   * @example
   * const pages = await mgr.withScope(async (scope) => {
   *   const upload = await scope.write(req, { suffix: '.pdf', maxBytes: 50 * 1024 ** 2 });
   *   const out = scope.dir();
   *   await renderPages(upload.path, out.path);
   *   return countPages(out.path);
   * }); // the upload and the directory are gone here, on return and on throw
   * @throws Whatever `fn` throws, unchanged.
   * @throws {@link InvalidOptionError} `ERR_TEMPFILE_INVALID_OPTION`: `fn` is not a function.
   * @throws {@link DisposedError} `ERR_TEMPFILE_DISPOSED`, {@link ManagerClosedError}
   * `ERR_TEMPFILE_MANAGER_CLOSED`: the scope or the manager was closed (`fn` is not called).
   * @throws What {@link remove} throws, once `fn` resolved.
   */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes every member in parallel, each as its own `remove()` does. Rejects with one
   * {@link RemoveError} holding every failure; the members that failed stay, for a second call.
   *
   * **Ownership:** from the call on the scope makes nothing more, and its writes in flight are
   * aborted. Once it resolves the scope owns nothing; what was kept or handed off is not touched.
   *
   * @throws {@link RemoveError} `ERR_TEMPFILE_REMOVE_FAILED`: some members could not be removed;
   * `err.errors` holds each failure (a {@link FileSystemError}, a {@link MountPointError}...).
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root or the session was
   * swapped since the manager started: nothing is removed (the manager's `close()` removes it).
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: checking the root failed: nothing is removed.
   */
  async remove(): Promise<void> {
    this.#live = false;
    this.#stopWrites();
    if (this.#members.size > 0) this.#context.checkRoot();
    const members = [...this.#members];
    const results = await Promise.allSettled(members.map((member) => member.remove()));
    const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    this.#finish(failures);
  }

  /**
   * Synchronous {@link remove}: one member after another, still collecting every failure; a
   * member whose async `remove()`, `keep()` or `handoff()` is in flight is left to it.
   * @throws What {@link remove} throws, in the same cases.
   */
  removeSync(): void {
    this.#live = false;
    this.#stopWrites();
    if (this.#members.size > 0) this.#context.checkRoot();
    const failures: unknown[] = [];
    for (const member of [...this.#members]) {
      try {
        member.removeSync();
      } catch (err) {
        failures.push(err);
      }
    }
    this.#finish(failures);
  }

  /** Same as {@link remove}, for `await using`. @throws What {@link remove} throws. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /** Same as {@link removeSync}, for `using`. @throws What {@link remove} throws. */
  [Symbol.dispose](): void {
    this.removeSync();
  }

  /** @internal */
  adopt(handle: Removable): void {
    this.#members.add(handle);
  }

  /** @internal */
  forget(handle: Removable): void {
    this.#members.delete(handle);
  }

  /** @internal */
  abandon(): void {
    this.#live = false;
    this.#abandoned = true;
    this.#stopWrites();
    for (const member of this.#members) member.abandon();
    this.#members.clear();
    this.#parent?.forget(this);
  }

  /**
   * Stops the writes in flight, and forgets the watcher of their failures (each write keeps its
   * own): a removed scope, which a request's objects may still reach until a full collection,
   * reaches none of its exchange's (the watcher's closure holds the request and its response).
   */
  #stopWrites(): void {
    this.#onWriteFailure = undefined;
    if (this.#writing > 0 && !this.#writes.aborted) this.#writes.abort(new DisposedError('TempScope'));
  }

  /** @internal */
  protected assertLive(): void {
    if (this.#abandoned) throw new ManagerClosedError();
    if (!this.#live) throw new DisposedError('TempScope');
  }

  #finish(failures: unknown[]): void {
    if (failures.length === 0) {
      this.#parent?.forget(this);
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

/** Tells `onFailure` of a write's failure, then rethrows it: the write's own failure is the one to report. */
function failed(onFailure: (source: WriteSource, error: unknown) => void, source: WriteSource, error: unknown): never {
  try {
    onFailure(source, error);
  } catch {
    // the write's own failure is the one reported
  }
  throw error;
}
