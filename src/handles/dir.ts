import { DiskHandle } from './handle.js';
import { removeTree, removeTreeSync } from '../disk/remove.js';

/**
 * A temp directory, created empty with mode 0700. Disposal removes it and everything in it,
 * without following symlinks. Make one with `mgr.dir()` or `scope.dir()`.
 *
 * @example
 * using work = mgr.dir();
 * await extractZip(upload.path, work.path);
 */
export class TempDir extends DiskHandle {
  /** @internal */
  protected deleteAsync(): Promise<void> {
    return removeTree(this.context.fs, this.path, { access: this.access });
  }

  /** @internal */
  protected deleteSync(): void {
    removeTreeSync(this.context.fs, this.path, { access: this.access });
  }
}
