import type { ManagerContext, Owner } from './context.js';
import { DisposedError } from './errors.js';

type HandleState = 'live' | 'removing' | 'gone';

/**
 * The lifecycle shared by {@link TempFile} and {@link TempDir}: live until removed, disposed,
 * kept or abandoned; removal is idempotent, and a failed removal leaves the handle live so that
 * it can be tried again.
 * @internal
 */
export abstract class DiskHandle implements AsyncDisposable, Disposable {
  /** Absolute path of the file or directory. Still readable after disposal, for logs. */
  readonly path: string;
  /** @internal */
  protected readonly context: ManagerContext;
  private readonly owner: Owner;
  private state: HandleState = 'live';
  private pending: Promise<void> | undefined;

  /** @internal */
  constructor(context: ManagerContext, owner: Owner, path: string) {
    this.context = context;
    this.owner = owner;
    this.path = path;
    owner.adopt(this);
  }

  /** True once the handle was removed, disposed, kept or its manager closed. */
  get disposed(): boolean {
    return this.state === 'gone';
  }

  /**
   * Removes it from disk. Resolves at once if it is already gone (also when something else
   * removed it); rejects with a typed error on a real failure, and the handle stays live.
   */
  remove(): Promise<void> {
    if (this.state === 'gone') return Promise.resolve();
    this.pending ??= this.removeOnce();
    return this.pending;
  }

  /** Synchronous {@link remove}, for `using` and exit paths. */
  removeSync(): void {
    if (this.state !== 'live') return;
    this.deleteSync();
    this.markGone();
  }

  /** Same as {@link remove}: `await using` calls it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /** Same as {@link removeSync}: `using` calls it at the end of the scope. */
  [Symbol.dispose](): void {
    this.removeSync();
  }

  /** @internal */
  abandon(): void {
    this.markGone();
  }

  /** Throws {@link DisposedError} unless the handle is live. @internal */
  protected assertLive(what: string): void {
    if (this.state !== 'live') throw new DisposedError(what, this.path);
  }

  /** Ends ownership without deleting: the disk object now belongs to someone else. @internal */
  protected markGone(): void {
    if (this.state === 'gone') return;
    this.state = 'gone';
    this.owner.forget(this);
    this.released();
  }

  /** Called once when the handle stops owning its disk object. @internal */
  protected released(): void {}

  /** @internal */
  protected abstract deleteAsync(): Promise<void>;
  /** @internal */
  protected abstract deleteSync(): void;

  private async removeOnce(): Promise<void> {
    this.state = 'removing';
    try {
      await this.deleteAsync();
      this.markGone();
    } catch (err) {
      if (this.state === 'removing') this.state = 'live';
      throw err;
    } finally {
      this.pending = undefined;
    }
  }
}
