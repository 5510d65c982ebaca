import { DiskHandle } from './handle.js';
import { removeTree, removeTreeSync, type RemoveVia } from '../disk/remove.js';

/**
 * A temp directory, created empty with mode 0700. Disposal removes it and everything in it,
 * without following symlinks. Make one with `mgr.dir()` or `scope.dir()`.
 *
 * **Ownership:** the handle owns the directory and whatever anyone puts in it: the whole tree
 * goes with {@link TempDir.remove} or disposal, else when its manager closes.
 *
 * **Security:** the tree is walked without following a symlink (through directory descriptors
 * where there is /proc) and never crosses into a mount point, which is left in place and
 * reported as a {@link MountPointError} (docs/security.md, "A process of the same uid, point by
 * point", and "Without /proc").
 *
 * @example
 * using work = mgr.dir();
 * await extractZip(upload.path, work.path);
 */
export class TempDir extends DiskHandle {
  /** @internal */
  protected deleteAsync(): Promise<void> {
    return removeTree(this.context.fs, this.path, this.via());
  }

  /** @internal */
  protected deleteSync(): void {
    removeTreeSync(this.context.fs, this.path, this.via());
  }

  /** Through its access path; what another handle holds to the end is set aside in the session (Windows). */
  private via(): RemoveVia {
    return { access: this.access, setAsideIn: this.context.session().base };
  }
}
