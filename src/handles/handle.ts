import { requireMadeContext, type ManagerContext, type Owner } from '../context/context.js';
import { DisposedError, type DiskErrors } from '../base/errors.js';
import { CHANNELS, publish } from '../base/channels.js';

type HandleState = 'live' | 'removing' | 'moving' | 'gone';

/** A disk object's public path and the path system calls take. @internal */
export interface Place {
  readonly path: string;
  readonly access: string;
}

let contextOfHandle: (handle: DiskHandle) => ManagerContext;

/** The context of the manager that made `handle`: for its subclasses' modules. @internal */
export function handleContext(handle: DiskHandle): ManagerContext {
  return contextOfHandle(handle);
}

/** The lifecycle shared by {@link TempFile} and {@link TempDir}. @internal */
export abstract class DiskHandle implements AsyncDisposable, Disposable {
  /** Absolute path, still readable after disposal, for logs. @throws See {@link DiskErrors}: a spooled file only. */
  get path(): string {
    return this.place().path;
  }
  /**
   * The path system calls take: through the session directory's descriptor
   * (`/proc/<pid>/fd/<fd>/<name>`), so a root swapped since cannot redirect them. @internal
   */
  get access(): string {
    return this.place().access;
  }
  readonly #placed: Place;
  // Runtime-private: no caller reaches the manager's context through a handle (docs/security.md).
  readonly #context: ManagerContext;
  readonly #owner: Owner;
  #state: HandleState = 'live';
  #pending: Promise<void> | undefined;
  #moving: Promise<void> | undefined;

  static {
    contextOfHandle = (handle) => handle.#context;
  }

  /**
   * Built only over a context a manager made: a caller's `new TempFile(...)` is a TypeError.
   * @internal
   */
  constructor(context: ManagerContext, owner: Owner, path: string, access: string) {
    requireMadeContext(context, new.target.name);
    this.#context = context;
    this.#owner = owner;
    this.#placed = { path, access };
    owner.adopt(this);
  }

  /** Where the disk object is; a spooled file writes itself to disk on the first ask. @internal */
  protected place(): Place {
    return this.#placed;
  }

  /** True once removed, disposed, kept or handed off, or its manager closed. @throws Never. */
  get disposed(): boolean {
    return this.#state === 'gone';
  }

  /**
   * Removes it from disk. Resolves at once if it is already gone (also when something else
   * removed it); rejects with a typed error on a real failure, and the handle stays live.
   *
   * **Ownership:** once it resolves the handle owns nothing. A `keep()` or `handoff()` in flight
   * is waited for: if it succeeds nothing is removed; if it fails the file is removed. Concurrent
   * calls share one removal.
   *
   * **Security:** a symlink put at its name is removed as a link, never what it points to; a tree
   * is walked without following a symlink or crossing into a mount point (docs/security.md).
   *
   * @throws {@link RootChangedError} `ERR_TEMPFILE_ROOT_CHANGED`: the root or the session was
   * swapped since the manager started: nothing is removed (its manager's `close()` removes it).
   * @throws {@link MountPointError} `ERR_TEMPFILE_MOUNT_POINT`: (a {@link TempDir}) a mount point
   * in the tree was left in place with what is under it; the rest was removed.
   * @throws {@link FileSystemError} `ERR_TEMPFILE_IO`: the removal failed (EACCES, EBUSY, EIO...);
   * the handle stays live, to try again.
   */
  remove(): Promise<void> {
    if (this.#state === 'gone') return Promise.resolve();
    // A keep() or handoff() in flight decides: once it is done the file is theirs, or ours again.
    if (this.#moving) return this.#moving.then(() => this.remove());
    this.#pending ??= this.removeOnce();
    return this.#pending;
  }

  /**
   * Synchronous {@link remove}, for `using` and exit paths. It leaves a file to an async
   * `remove()`, `keep()` or `handoff()` in flight (`return file.keep(dest)` in a `using` block keeps it).
   * @throws What {@link remove} throws, in the same cases.
   */
  removeSync(): void {
    if (this.#state !== 'live') return;
    this.#context.checkRoot();
    this.deleteSync();
    this.#publishRemoved();
    this.markGone();
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
  abandon(): void {
    this.markGone();
  }

  /**
   * Moves the disk object out of this handle's ownership (`keep()`, `handoff()`): from the call
   * on, a disposal waits for the move (an async one) or leaves the file to it (a sync one), so
   * `return file.keep(dest)` at the end of an `await using` block keeps the file. The handle is
   * gone once the move succeeds, live again if it fails.
   * @internal
   */
  protected async moveOut<T>(what: string, move: () => Promise<T>): Promise<T> {
    this.assertLive(what);
    this.#state = 'moving';
    const running = move();
    this.#moving = running.then(
      () => {},
      () => {},
    );
    try {
      const result = await running;
      this.markGone();
      return result;
    } catch (err) {
      this.#state = 'live';
      throw err;
    } finally {
      this.#moving = undefined;
    }
  }

  /** What `tempfile-manager:file:remove` says of this handle. @internal */
  protected removalFacts(): { kind: 'file' | 'dir'; size: number } {
    return { kind: 'dir', size: 0 };
  }

  #publishRemoved(): void {
    publish(CHANNELS.fileRemove, () => ({ root: this.#context.root, path: this.path, ...this.removalFacts() }));
  }

  /** Throws {@link DisposedError} unless the handle is live. @internal */
  protected assertLive(what: string): void {
    if (this.#state !== 'live') throw new DisposedError(what, this.path);
  }

  /** Ends ownership without deleting: the disk object now belongs to someone else. @internal */
  protected markGone(): void {
    if (this.#state === 'gone') return;
    this.#state = 'gone';
    this.#owner.forget(this);
    this.released();
  }

  /** Called once when the handle stops owning its disk object. @internal */
  protected released(): void {}

  /** @internal */
  protected abstract deleteAsync(): Promise<void>;
  /** @internal */
  protected abstract deleteSync(): void;

  private async removeOnce(): Promise<void> {
    this.#state = 'removing';
    try {
      this.#context.checkRoot();
      await this.deleteAsync();
      this.#publishRemoved();
      this.markGone();
    } catch (err) {
      if (this.#state === 'removing') this.#state = 'live';
      throw err;
    } finally {
      this.#pending = undefined;
    }
  }
}
