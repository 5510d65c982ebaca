import type { Stats } from 'node:fs';
import { CHANNELS, publish } from '../base/channels.js';
import type { RootContext } from '../root/root.js';
import { isErrorCode, RootChangedError, systemErrorCode, toFileSystemError, type RootChange, type TempFileError } from '../base/errors.js';
import { fs } from '../disk/fs.js';
import { openPinnedSync, type PinnedDirSync } from '../disk/pinned-dir.js';
import { logger } from '../base/log.js';
import { randomName } from '../base/random-name.js';
import { processIdentity } from '../owner/process-identity.js';
import { startHeartbeat, type Heartbeat } from '../owner/heartbeat.js';
import { sessionLockPath, sessionName } from '../base/layout.js';
import { removeTree, removeTreeSync } from '../disk/remove.js';
import { isHold, newSetAsideName } from '../disk/holds.js';
import type { DirIdentity } from '../root/root.js';
import { RunFlag } from '../base/run-flag.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

const log = logger('session');

/** Options for {@link Session}. */
export interface SessionOptions extends Pick<RootContext, 'root' | 'staleMs' | 'hostId' | 'holdLive'> {
  /** The root directory the manager checked when it was made. */
  readonly rootId: DirIdentity;
}

/** Where a session's entries are: its public path, and how system calls reach it. @internal */
export interface SessionPlaces {
  /** `<root>/<session>`: the path handed to users in `file.path`. */
  readonly path: string;
  /** `/proc/<pid>/fd/<fd>` of the session directory held open, or (without /proc) its path. */
  readonly base: string;
}

/**
 * A manager's directory under the root, held alive by a lock directory next to it whose
 * heartbeat (owner/heartbeat.ts) is refreshed while the process lives. The lock is taken before the directory is made and dropped
 * after it is gone, so a directory without a fresh lock always belongs to nobody.
 *
 * The root and the session directory are held open (pinned) for the session's life: the lock,
 * the session directory and everything in it are reached through those descriptors
 * (`/proc/<pid>/fd/<fd>/<name>`), never through the root's path, which another process could
 * rename and replace with a symlink. {@link check} notices such a swap: the session's path no
 * longer names the directory that was made. Without /proc the paths are used, after the check.
 */
export class Session {
  private named: { readonly name: string; readonly dir: string } | undefined;
  private readonly options: SessionOptions;
  private heartbeat: Heartbeat | undefined;
  private rootPin: PinnedDirSync | undefined;
  private sessionPin: PinnedDirSync | undefined;
  private sessionId: DirIdentity | undefined;
  private placesOf: SessionPlaces | undefined;
  private changed: RootChangedError | undefined;
  /** The session directory is gone or replaced while the root is still the manager's: lasting for the session only. */
  private sessionLost: RootChangedError | undefined;
  /** A check passed in the JavaScript run now going on (only where the session is pinned). */
  private readonly checked = new RunFlag();
  /** The root's path was checked in the JavaScript run now going on (only where the root is pinned). */
  private readonly rootChecked = new RunFlag();
  private pinnedLockPath: string | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
  }

  /** The session directory's public path, `<root>/<session>`. */
  get dir(): string {
    return this.naming().dir;
  }

  private get name(): string {
    return this.naming().name;
  }

  private get lockPath(): string {
    return this.pinnedLockPath ?? sessionLockPath(this.dir);
  }

  // Named at its first use, not with the manager: a manager that never makes a file never loads
  // the random-number generator (node:crypto, 2.7 MiB resident).
  private naming(): { readonly name: string; readonly dir: string } {
    if (!this.named) {
      const name = sessionName({ ...processIdentity(this.options.hostId), created: Date.now(), random: randomName().slice(0, 16) });
      this.named = { name, dir: path.join(this.options.root, name) };
    }
    return this.named;
  }

  /** The session's places, once {@link open}. */
  get places(): SessionPlaces | undefined {
    return this.placesOf;
  }

  /** True where the root and the session are reached through descriptors (Linux with /proc). */
  private get pinned(): boolean {
    return this.rootPin !== undefined && this.rootPin.base !== this.options.root;
  }

  /**
   * How the root's entries are reached: its descriptor's `/proc` path, opened on first use and
   * checked to be the directory the manager was made with; without /proc, the root's path,
   * checked first. Where the root is pinned, its path is checked once per run of JavaScript, as
   * {@link check} does.
   * @throws {@link RootChangedError} once the root's path leads elsewhere.
   */
  rootBase(): string {
    if (!this.rootChecked.up) this.checkRoot();
    else if (this.changed) throw this.changed;
    if (!this.rootPin) {
      const { root } = this.options;
      let pin: ReturnType<typeof openPinnedSync>;
      try {
        pin = openPinnedSync(root);
      } catch (err) {
        throw toFileSystemError('open the root', root, err);
      }
      if (typeof pin === 'string') throw this.fail(nothingThere(pin, root));
      let seen: Stats | NothingThere;
      try {
        seen = lookAt(`${pin.base}/.`, root);
      } catch (err) {
        pin.close();
        throw err;
      }
      if (!sameDir(seen, this.options.rootId)) {
        pin.close();
        throw this.fail(seen);
      }
      this.rootPin = pin;
    }
    if (this.pinned) this.rootChecked.raise();
    return this.rootPin.base;
  }

  /**
   * Throws {@link RootChangedError} (for good) once the session's path, or before the session is
   * made the root's, no longer names the directory the manager made or checked: one `lstat`. Where
   * the session is pinned, nothing can be redirected by a swap, so the check is made once per run
   * of JavaScript (until the next `process.nextTick`): a swap is noticed by the first call after it.
   * Without /proc it is made on every call, as it guards the path itself.
   */
  check(): void {
    if (this.changed) throw this.changed;
    if (this.sessionLost) throw this.sessionLost;
    if (this.checked.up) return;
    const [target, wanted] = this.sessionId ? [this.dir, this.sessionId] : [this.options.root, this.options.rootId];
    const seen = lookAt(target, this.options.root);
    if (!sameDir(seen, wanted)) throw this.fail(seen);
    if (this.pinned) this.checked.raise();
  }

  /** Throws {@link RootChangedError} unless the root's path names the directory the manager was made with. */
  checkRoot(): void {
    if (this.changed) throw this.changed;
    const seen = lookAt(this.options.root, this.options.root);
    if (!sameDir(seen, this.options.rootId)) throw this.fail(seen);
  }

  /** Takes the lock and makes the directory (mode 0700), both through the pinned root. Synchronous: `file()` is. */
  open(): SessionPlaces {
    const rootBase = this.rootBase();
    const at = `${rootBase}/${this.name}`;
    this.pinnedLockPath = sessionLockPath(at);
    this.lock();
    try {
      fs.mkdirSync(at, { mode: 0o700 });
    } catch (err) {
      this.unlock(true);
      throw toFileSystemError('create the session directory', this.dir, err);
    }
    try {
      const pin = openPinnedSync(at);
      if (typeof pin === 'string') throw Object.assign(new Error(`ENOENT: ${this.dir} is gone`), { code: 'ENOENT' });
      this.sessionPin = pin;
      const made = fs.lstatSync(`${pin.base}/.`);
      this.sessionId = { dev: made.dev, ino: made.ino };
      this.checked.lower();
      this.check(); // the public path names the directory made through the pinned root
    } catch (err) {
      // What was made goes, unless the root's path was swapped and only a path (no /proc) reaches it.
      const reachable = this.pinned || !isErrorCode(err, 'ERR_TEMPFILE_ROOT_CHANGED');
      try {
        if (reachable) this.removeDirOf(rootBase);
      } catch {
        // the open's failure is the one to report; the sweep removes an empty session left unlocked
      }
      this.unlock(reachable);
      this.release();
      throw isErrorCode(err, 'ERR_TEMPFILE_ROOT_CHANGED') ? err : toFileSystemError('open the session directory', this.dir, err);
    }
    this.placesOf = { path: this.dir, base: this.sessionPin.base };
    log('opened %s', this.dir);
    return this.placesOf;
  }

  /**
   * Removes the directory and everything in it, then drops the lock. After a swap of the root,
   * removes the session's own tree through its descriptor (or, without /proc, nothing), then
   * throws the {@link RootChangedError}.
   */
  async close(): Promise<void> {
    const changed = this.changeAtClose();
    try {
      if (this.pinned && this.sessionId) {
        await removeTree(this.dir, this.treeVia(this.sessionId)).catch((err: unknown) => this.setAsideIfHeld(err));
        this.removeDirOf(this.rootPin!.base);
      } else if (!changed) {
        await removeTree(this.dir).catch((err: unknown) => this.setAsideIfHeld(err));
      }
    } finally {
      this.unlock(this.pinned || !changed);
      this.release();
    }
    log('closed %s', this.dir);
    if (changed) throw changed;
  }

  /** Synchronous {@link close}, for exit paths. */
  closeSync(): void {
    const changed = this.changeAtClose();
    try {
      if (this.pinned && this.sessionId) {
        this.orSetAside(() => removeTreeSync(this.dir, this.treeVia(this.sessionId!)));
        this.removeDirOf(this.rootPin!.base);
      } else if (!changed) {
        this.orSetAside(() => removeTreeSync(this.dir));
      }
    } finally {
      this.unlock(this.pinned || !changed);
      this.release();
    }
    log('closed %s', this.dir);
    if (changed) throw changed;
  }

  /**
   * Closes the descriptors held (a manager that only claimed holds the root's) and forgets the
   * session directory made, if any: a later {@link open} makes it anew. Idempotent.
   */
  release(): void {
    this.sessionId = undefined;
    this.sessionPin?.close();
    this.sessionPin = undefined;
    this.rootPin?.close();
    this.rootPin = undefined;
    this.placesOf = undefined;
  }

  private treeVia(id: DirIdentity): { access: string; parentDev: number; keepTop: true } {
    return { access: `${this.sessionPin!.base}/.`, parentDev: id.dev, keepTop: true };
  }

  /** A fresh check at close: the swap it found, if any (a failure to look is not one). */
  private changeAtClose(): TempFileError | undefined {
    this.checked.lower();
    this.rootChecked.lower();
    try {
      this.check();
      return undefined;
    } catch (err) {
      if (isErrorCode(err, 'ERR_TEMPFILE_ROOT_CHANGED')) return err;
      return undefined;
    }
  }

  private orSetAside(remove: () => void): void {
    try {
      remove();
    } catch (err) {
      this.setAsideIfHeld(err);
    }
  }

  /**
   * The session's tree could not all go: where another handle still holds something in it
   * (Windows), the session directory is renamed to a set-aside name at the top of the root,
   * which no owner has and every sweep removes once the hold has ended (crash-recovery.md);
   * any other failure is thrown.
   */
  private setAsideIfHeld(err: unknown): void {
    if (!isHold(err)) throw err;
    const rootBase = this.rootPin?.base ?? path.dirname(this.dir);
    const at = `${rootBase}/${this.name}`;
    if (this.sessionId && !sameDir(statOrUndefined(at), this.sessionId)) throw err;
    try {
      fs.renameSync(at, `${rootBase}/${newSetAsideName()}`);
    } catch {
      throw err;
    }
    log('set aside %s, held: %s', this.dir, err instanceof Error ? err.message : err);
  }

  /**
   * Removes the (emptied) session directory through the pinned root, only if its name still is the
   * directory made; before its identity was read (an open that failed just after its mkdir), an
   * rmdir, which removes only an empty directory and never follows a link.
   */
  private removeDirOf(rootBase: string): void {
    const at = `${rootBase}/${this.name}`;
    if (this.sessionId && !sameDir(statOrUndefined(at), this.sessionId)) return;
    try {
      fs.rmdirSync(at);
    } catch (err) {
      if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', this.dir, err);
    }
  }

  /**
   * What a check that did not find the directory it wanted means, after a second look: the change
   * at the root's path, typed and remembered (every later call throws it); or, when the second
   * look finds the root and the session as they were, a {@link FileSystemError} for this call
   * alone. A file system may answer ENOENT once for a path that is there (a network file system's
   * stale cache, a fault): the lasting error is kept for a change that two looks agree on.
   * @param seen What the first look found: its stats, or the error that said nothing was there.
   */
  private fail(seen: Stats | NothingThere): RootChangedError | TempFileError {
    const { root, rootId } = this.options;
    let change: RootChange;
    let found: string;
    const stat = existing(lookAt(root, root));
    const session = sameDir(stat, rootId) && this.sessionId ? existing(lookAt(this.dir, root)) : undefined;
    if (seen instanceof NothingThere && sameDir(stat, rootId) && (!this.sessionId || sameDir(session, this.sessionId))) {
      log('the check of %s said %s, a second look found it unchanged', root, systemErrorCode(seen.error));
      return toFileSystemError('check the root', root, seen.error);
    }
    if (!stat) {
      change = 'missing';
      found = 'nothing is at that path any more';
    } else if (stat.isSymbolicLink()) {
      change = 'symlink';
      found = `it is now a symbolic link${linkTarget(root)}`;
    } else if (!sameDir(stat, rootId)) {
      change = 'replaced';
      found = `another ${stat.isDirectory() ? 'directory' : 'file'} is at that path (device ${stat.dev}, inode ${stat.ino}; the manager's was device ${rootId.dev}, inode ${rootId.ino})`;
    } else {
      change = session ? 'replaced' : 'missing';
      found = session
        ? `its session directory ${this.dir} was replaced by another ${session.isSymbolicLink() ? 'symbolic link' : 'directory or file'}`
        : `its session directory ${this.dir} was removed`;
      // The root is still the manager's: only its session is lost (removed by a sweep of another
      // host that judged it dead across a network cut, or by a cleanup job). Nothing more is made
      // or removed in the session; what reaches the root alone (claims, sweeps) goes on.
      if (!this.sessionLost) publish(CHANNELS.rootChange, () => ({ root, change, session: true }));
      this.sessionLost ??= new RootChangedError(change, root, found);
      log('session lost: %s', this.sessionLost.message);
      return this.sessionLost;
    }
    if (!this.changed) publish(CHANNELS.rootChange, () => ({ root, change, session: false }));
    this.changed ??= new RootChangedError(change, root, found);
    log('root changed: %s', this.changed.message);
    return this.changed;
  }

  /** Makes the lock directory (0700, whatever the umask) and starts its heartbeat. */
  private lock(): void {
    this.options.holdLive?.();
    try {
      fs.mkdirSync(this.lockPath, { mode: 0o700 });
    } catch (err) {
      throw toFileSystemError('lock the session', sessionLockPath(this.dir), err);
    }
    try {
      this.heartbeat = startHeartbeat({
        at: this.lockPath,
        shown: sessionLockPath(this.dir),
        kind: 'session',
        beatAtStart: true,
        onGone: () => this.relock(),
      });
    } catch (err) {
      // A lock without a heartbeat would outlive close(), which drops only a beaten lock.
      this.dropLockQuietly();
      throw toFileSystemError('start the heartbeat of', sessionLockPath(this.dir), err);
    }
  }

  private dropLockQuietly(): void {
    try {
      fs.rmdirSync(this.lockPath);
    } catch (err) {
      log('unlock %s: %s', this.dir, systemErrorCode(err) ?? err);
    }
  }

  /**
   * Stops the heartbeat; the lock directory is removed only when `remove` (reached through the
   * pinned root, or by a path still checked): after a swap without /proc the path may name
   * another's lock.
   */
  private unlock(remove: boolean): void {
    if (!this.heartbeat) return;
    this.heartbeat.stop();
    this.heartbeat = undefined;
    // Removed by hand, or by a sweeper that judged this process dead: nothing left to drop.
    if (remove) this.dropLockQuietly();
  }

  /** A lock removed from outside (a sweep on another host that judged us dead) is made again: never a crash. */
  private relock(): void {
    if (!this.heartbeat) return;
    this.heartbeat = undefined;
    try {
      this.lock();
      log('lock of %s made again', this.dir);
    } catch (err) {
      log('could not make the lock of %s again: %s', this.dir, systemErrorCode(err) ?? err);
    }
  }
}

/** A look that found nothing at a path (ENOENT, ENOTDIR, ELOOP), with the error that said so. */
class NothingThere {
  constructor(readonly error: unknown) {}
}

/** The error an open that found nothing (`'gone'`, `'not-a-dir'`) did not hand on. */
function nothingThere(found: 'gone' | 'not-a-dir', at: string): NothingThere {
  const code = found === 'gone' ? 'ENOENT' : 'ENOTDIR';
  return new NothingThere(Object.assign(new Error(`${code}: no directory at '${at}'`), { code, syscall: 'open', path: at }));
}

/**
 * The lstat of a path the swap check compares, or {@link NothingThere}. Any other failure (EIO,
 * EMFILE, ENOMEM) says nothing of a swap: a {@link FileSystemError} for this call alone, never
 * the lasting {@link RootChangedError}.
 */
function lookAt(at: string, root: string): Stats | NothingThere {
  try {
    return fs.lstatSync(at);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return new NothingThere(err);
    throw toFileSystemError('check the root', root, err);
  }
}

function existing(seen: Stats | NothingThere): Stats | undefined {
  return seen instanceof NothingThere ? undefined : seen;
}

function statOrUndefined(at: string): Stats | undefined {
  try {
    return fs.lstatSync(at);
  } catch {
    return undefined;
  }
}

function sameDir(stat: { dev: number; ino: number; isDirectory(): boolean } | NothingThere | undefined, id: DirIdentity): boolean {
  return stat !== undefined && !(stat instanceof NothingThere) && stat.isDirectory() && stat.dev === id.dev && stat.ino === id.ino;
}

function linkTarget(link: string): string {
  try {
    return ` to ${String(fs.readlinkSync(link))}`;
  } catch {
    return '';
  }
}
