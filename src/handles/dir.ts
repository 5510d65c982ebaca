import { DiskHandle, handleContext } from './handle.js';
import { removeTree, removeTreeSync, type RemoveVia } from '../disk/remove.js';

/**
 * A temp directory, created empty with mode 0700, owning whatever anyone puts in it: disposal
 * removes the whole tree, without following a symlink or crossing into a mount point (left in
 * place, a {@link MountPointError}; docs/security.md). Make one with `mgr.dir()` or `scope.dir()`.
 *
 * @example
 * using work = mgr.dir();
 * await extractZip(upload.path, work.path);
 */
export class TempDir extends DiskHandle {
  /** @internal */
  protected deleteAsync(): Promise<void> {
    return removeTree(this.path, this.#via());
  }

  /** @internal */
  protected deleteSync(): void {
    removeTreeSync(this.path, this.#via());
  }

  /** Through its access path; what another handle holds to the end is set aside in the session (Windows). */
  #via(): RemoveVia {
    return { access: this.access, setAsideIn: handleContext(this).session().base };
  }
}
