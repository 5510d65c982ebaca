import type { ManagerContext, Owner, Removable } from '../context.js';
import { createDir, createFile, type NameArgument } from './create.js';
import type { TempDir } from './dir.js';
import { DisposedError, ManagerClosedError, RemoveError, TempFileError } from '../errors.js';
import { requireCallback } from '../options.js';
import type { TempFile } from './file.js';
import type { WriteSource } from '../write/source.js';
import { writeTempFile, type WriteOptions } from './write.js';

/**
 * A group of temp files, directories and nested scopes, removed together when the scope is
 * disposed. Removal runs in parallel and goes on past failures: every failure is collected into
 * one {@link RemoveError}. Make one with `mgr.scope()` or `scope.scope()`.
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

  /** @internal */
  constructor(context: ManagerContext, parent?: Owner) {
    this.context = context;
    this.parent = parent;
    parent?.adopt(this);
  }

  /** True once the scope was disposed or its manager closed. */
  get disposed(): boolean {
    return !this.live;
  }

  /** How many live files, directories and scopes this scope holds directly. */
  get size(): number {
    return this.members.size;
  }

  /** A new empty temp file (0600) owned by this scope. Synchronous. See `TempFileManager.file`. */
  file(suffixOrOptions?: NameArgument): TempFile {
    this.assertLive();
    return createFile(this.context, this, suffixOrOptions);
  }

  /** A new empty temp directory (0700) owned by this scope. Synchronous. */
  dir(suffixOrOptions?: NameArgument): TempDir {
    this.assertLive();
    return createDir(this.context, this, suffixOrOptions);
  }

  /** Streams `source` into a new temp file owned by this scope. See `TempFileManager.write`. */
  write(source: WriteSource, options?: WriteOptions): Promise<TempFile> {
    try {
      this.assertLive();
    } catch (err) {
      return Promise.reject(err);
    }
    this.writing += 1;
    return writeTempFile(this.context, this, source, options, this.writes.signal).finally(() => {
      this.writing -= 1;
    });
  }

  /** A nested scope, removed with this one (or before it). */
  scope(): TempScope {
    this.assertLive();
    return new TempScope(this.context, this);
  }

  /**
   * Runs `fn` with a new nested scope and removes that scope's files when `fn` settles: the way
   * to scope files without `using`. See `TempFileManager.withScope`.
   * @throws {@link InvalidOptionError} (a rejection, before the scope is made) when `fn` is not a function.
   */
  withScope<T>(fn: (scope: TempScope) => T | PromiseLike<T>): Promise<T> {
    return runInScope(() => this.scope(), fn);
  }

  /**
   * Removes every member in parallel. Rejects with one {@link RemoveError} holding every
   * failure; the members that failed stay in the scope so that a second call retries them.
   * @throws {@link RootChangedError} when the root was swapped since the manager started: nothing
   * is removed, and the members stay for `close()`.
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

  /** Synchronous {@link remove}: one member after another, still collecting every failure. */
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

  /** Same as {@link remove}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /** Same as {@link removeSync}. */
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
  requireCallback(fn, 'withScope()', '`async (scope) => { ... }`');
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
  if (err instanceof RemoveError) return [...err.errors];
  if (err instanceof Error) return [err];
  return [new TempFileError('ERR_TEMPFILE_IO', String(err))];
}
