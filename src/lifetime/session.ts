import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { RootContext } from '../context.js';
import { systemErrorCode, toFileSystemError } from '../errors.js';
import type { FileSystem } from '../disk/fs.js';
import { logger } from '../log.js';
import { randomName } from '../names.js';
import { processIdentity } from './process-identity.js';
import { HEARTBEAT_MS } from './liveness.js';
import { sessionLockPath, sessionName } from '../layout.js';
import { removeTree, removeTreeSync } from '../disk/remove.js';

const log = logger('session');

const privateFs = new WeakMap<FileSystem, FileSystem>();

/**
 * `fs` whose `mkdir` and `mkdirSync` make every directory 0700: proper-lockfile makes its lock
 * directory with no mode, which a umask of 000 would leave 0777. The mode is given to the mkdir
 * itself, so there is no moment when the directory is open to others.
 */
function withPrivateMkdir(fs: FileSystem): FileSystem {
  let wrapped = privateFs.get(fs);
  if (wrapped === undefined) {
    const base = fs as FileSystem & { mkdir?: (dir: string, options: unknown, callback?: unknown) => void };
    wrapped = {
      ...fs,
      mkdirSync: ((dir: string) => fs.mkdirSync(dir, { mode: 0o700 })) as FileSystem['mkdirSync'],
      ...(typeof base.mkdir === 'function' && {
        mkdir: (dir: string, options: unknown, callback?: unknown) =>
          base.mkdir!(dir, { mode: 0o700 }, typeof options === 'function' ? options : callback),
      }),
    } as FileSystem;
    privateFs.set(fs, wrapped);
  }
  return wrapped;
}

/** Options for {@link Session}. */
export type SessionOptions = Pick<RootContext, 'fs' | 'root' | 'staleMs' | 'hostId'>;

/**
 * A manager's directory under the root, held alive by a proper-lockfile lock whose mtime is
 * refreshed while the process lives. The lock is taken before the directory is made and dropped
 * after it is gone, so a directory without a fresh lock always belongs to nobody.
 */
export class Session {
  readonly dir: string;
  private readonly options: SessionOptions;
  private locked = false;

  constructor(options: SessionOptions) {
    this.options = options;
    this.dir = path.join(options.root, sessionName({ ...processIdentity(options.hostId), created: Date.now(), random: randomName().slice(0, 16) }));
  }

  /** Takes the lock and makes the directory (mode 0700). Synchronous: `file()` is. */
  open(): void {
    this.lock();
    try {
      this.options.fs.mkdirSync(this.dir, { mode: 0o700 });
    } catch (err) {
      this.unlock();
      throw toFileSystemError('create the session directory', this.dir, err);
    }
    log('opened %s', this.dir);
  }

  /** Removes the directory and everything in it, then drops the lock. */
  async close(): Promise<void> {
    try {
      await removeTree(this.options.fs, this.dir);
    } finally {
      this.unlock();
    }
    log('closed %s', this.dir);
  }

  /** Synchronous {@link close}, for exit paths. */
  closeSync(): void {
    try {
      removeTreeSync(this.options.fs, this.dir);
    } finally {
      this.unlock();
    }
    log('closed %s', this.dir);
  }

  private lock(): void {
    try {
      lockfile.lockSync(this.dir, this.lockOptions());
      this.locked = true;
    } catch (err) {
      throw toFileSystemError('lock the session', sessionLockPath(this.dir), err);
    }
  }

  private unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    try {
      lockfile.unlockSync(this.dir, { realpath: false, lockfilePath: sessionLockPath(this.dir), fs: this.options.fs });
    } catch (err) {
      // Released already (compromised and given up) or removed by hand: nothing left to drop.
      log('unlock %s: %s', this.dir, systemErrorCode(err) ?? err);
    }
  }

  private lockOptions(): lockfile.LockOptions {
    return {
      stale: this.options.staleMs,
      update: HEARTBEAT_MS,
      realpath: false,
      lockfilePath: sessionLockPath(this.dir),
      fs: withPrivateMkdir(this.options.fs),
      onCompromised: (err) => this.onCompromised(err),
    };
  }

  /** A lost lock must never crash the app: log it and take the lock again. */
  private onCompromised(err: Error): void {
    log('lock of %s compromised: %s', this.dir, err.message);
    if (!this.locked) return;
    try {
      lockfile.lockSync(this.dir, this.lockOptions());
      log('lock of %s taken again', this.dir);
    } catch (retakeError) {
      this.locked = false;
      log('could not take the lock of %s again: %s', this.dir, systemErrorCode(retakeError) ?? retakeError);
    }
  }
}
