import type { Stats } from 'node:fs';
import { isErrorCode, isGone, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { localDiskKind } from '../disk/local-disk.js';
import type { PinnedDirSync } from '../disk/pinned-dir.js';
import { handoffDirOf } from '../base/layout.js';
import { checkOwnDirectory, openHandoffDirChecked } from './handoff.js';
import { RunFlag } from '../base/run-flag.js';

/** The handoff directory as one call uses it. @internal */
export interface HandoffDirUse extends PinnedDirSync {
  /**
   * Its device, when it is on a local file system (`disk/local-disk.ts`): a small file on that
   * device may be unlinked inline. Undefined when unknown or not local.
   */
  readonly localDevice: number | undefined;
  /**
   * It is on a file system held in memory (tmpfs, ramfs), where removing a directory waits for no
   * device: an entry's directory is then removed inline.
   */
  readonly inMemory: boolean;
}

/** The handoff directory held by its descriptor, with the identity it was checked under. */
interface Held {
  readonly pinned: PinnedDirSync;
  readonly dev: number;
  readonly ino: number;
  readonly kind: 'memory' | 'device' | undefined;
  /** Users of the descriptor: the hold itself while it keeps it, and each claim still using it. */
  refs: number;
}

/**
 * A manager's `<root>/handoff`, opened once and held open across handoffs and claims, instead of
 * an open, two checks and a close per call. Each {@link HandoffDirHold.acquire} looks at the name
 * again (one lstat through the pinned root, without following a link): the descriptor is used only
 * while the name still leads to that very directory (device and inode), still ours and closed to
 * others; anything else (gone, renamed away, replaced, a symlink, another uid's, chmod'ed) drops
 * it and the directory is opened and checked afresh, as at first. A call thus lands in the
 * directory at the name when it looked, as a fresh open would. As the session's checks, the look
 * is made once per run of JavaScript (until the next `process.nextTick`): a swap is noticed by
 * the first call after it. Without /proc nothing is held: every call opens and checks by path.
 * @internal
 */
export class HandoffDirHold {
  private held: Held | undefined;
  private closed = false;
  /** The name was looked at in the JavaScript run now going on, and led to the held directory. */
  private readonly lookedInRun = new RunFlag();
  /** `<rootBase>/handoff` and `<root>/handoff`, made once: a manager's root and root base do not change. */
  private names: { readonly root: string; readonly rootBase: string; readonly at: string; readonly shown: string } | undefined;

  /**
   * The handoff directory, checked now; `undefined` when it is missing. Release it with its
   * `close()` (once): the descriptor stays open while the hold or any user keeps it.
   * @throws {@link UnsafeRootError} as {@link openHandoffDirSync}; {@link FileSystemError} when it cannot be looked at.
   */
  acquire(root: string, rootBase: string): HandoffDirUse | undefined {
    const current = this.held && (this.lookedInRun.up ? this.held : this.stillAtName(root, rootBase, this.held));
    if (current) {
      this.lookedInRun.raise();
      return this.use(current);
    }
    this.drop();
    const opened = openHandoffDirChecked(root, rootBase);
    if (!opened) return undefined;
    const { pinned, stat } = opened;
    if (this.closed || pinned.base === handoffDirOf(rootBase)) return { ...pinned, localDevice: undefined, inMemory: false }; // by path: nothing to hold
    const held: Held = { pinned, dev: stat.dev, ino: stat.ino, kind: localDiskKind(pinned.base), refs: 1 };
    this.held = held;
    return this.use(held);
  }

  /** Lets go of the held descriptor (the manager closes): users still holding it keep it until they release it. */
  close(): void {
    this.closed = true;
    this.drop();
  }

  // One lstat of the name through the pinned root: the held directory while the name leads to it
  // and it passes the checks of a fresh open (a directory of ours, closed to others).
  private stillAtName(root: string, rootBase: string, held: Held): Held | undefined {
    let names = this.names;
    if (names?.root !== root || names.rootBase !== rootBase) {
      names = { root, rootBase, at: handoffDirOf(rootBase), shown: handoffDirOf(root) };
      this.names = names;
    }
    let stat: Stats;
    try {
      stat = fs.lstatSync(names.at);
    } catch (err) {
      const code = systemErrorCode(err);
      if (isGone(code) || code === 'ENOTDIR') return undefined;
      throw toFileSystemError('check the handoff directory', names.shown, err);
    }
    if (stat.dev !== held.dev || stat.ino !== held.ino) return undefined;
    try {
      checkOwnDirectory(stat, names.shown);
    } catch (err) {
      if (isErrorCode(err, 'ERR_TEMPFILE_UNSAFE_ROOT')) return undefined; // the fresh open says why
      throw err;
    }
    return held;
  }

  private use(held: Held): HandoffDirUse {
    held.refs++;
    let released = false;
    return {
      base: held.pinned.base,
      localDevice: held.kind === undefined ? undefined : held.dev,
      inMemory: held.kind === 'memory',
      close: () => {
        if (released) return;
        released = true;
        unref(held);
      },
    };
  }

  private drop(): void {
    this.lookedInRun.lower();
    const held = this.held;
    this.held = undefined;
    if (held) unref(held);
  }
}

function unref(held: Held): void {
  held.refs--;
  if (held.refs === 0) held.pinned.close();
}
