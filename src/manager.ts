import type { ManagerContext } from './context.js';
import type { NameArgument } from './create.js';
import type { TempDir } from './dir.js';
import { ManagerClosedError } from './errors.js';
import type { TempFile } from './file.js';
import { logger } from './log.js';
import { resolveOptions, type ResolvedOptions, type TempFileManagerOptions } from './options.js';
import { ensureSafeRoot } from './root.js';
import { TempScope } from './scope.js';
import { Session } from './session.js';

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
  private readonly context: ManagerContext;
  private readonly rootScope: TempScope;
  private opened = false;
  private isClosed = false;

  /**
   * Validates the options and makes sure the root exists and is safe (synchronous). The
   * session directory is created on first use.
   * @throws {@link InvalidOptionError} for a bad option; {@link UnsafeRootError} for an unsafe root.
   */
  constructor(options?: TempFileManagerOptions) {
    this.options = resolveOptions(options);
    this.root = this.options.root;
    ensureSafeRoot(this.options.fs, this.root);
    this.session = new Session({ fs: this.options.fs, root: this.root, staleMs: this.options.staleMs });
    this.context = {
      fs: this.options.fs,
      prefix: this.options.prefix,
      sessionDir: () => this.sessionDir(),
    };
    this.rootScope = new TempScope(this.context);
    log('manager for %s', this.root);
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
   */
  file(suffixOrOptions?: NameArgument): TempFile {
    return this.rootScope.file(suffixOrOptions);
  }

  /** A new empty temp directory (mode 0700), synchronously. Disposal removes the whole tree. */
  dir(suffixOrOptions?: NameArgument): TempDir {
    return this.rootScope.dir(suffixOrOptions);
  }

  /** A scope: files, directories and nested scopes removed together when it is disposed. */
  scope(): TempScope {
    this.assertOpen();
    return this.rootScope.scope();
  }

  /**
   * Removes the session directory with everything still in it and releases its lock; every
   * handle of this manager is then disposed. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.beginClose()) return;
    await this.session.close();
  }

  /** Synchronous {@link close}, for exit paths and `using`. */
  closeSync(): void {
    if (!this.beginClose()) return;
    this.session.closeSync();
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
    this.rootScope.abandon();
    log('closing %s', this.session.dir);
    return this.opened;
  }

  private sessionDir(): string {
    this.assertOpen();
    if (!this.opened) {
      this.session.open();
      this.opened = true;
    }
    return this.session.dir;
  }

  private assertOpen(): void {
    if (this.isClosed) throw new ManagerClosedError();
  }
}
