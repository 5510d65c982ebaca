import type { FileSystem } from './fs.js';

type RmdirCallback = (err: NodeJS.ErrnoException | null) => void;
interface CallbackRmdir {
  rmdir(path: string, callback: RmdirCallback): void;
}

/** The file system handed to proper-lockfile for leases, and its removals in flight. @internal */
export interface LockFs {
  readonly fs: FileSystem;
  /**
   * The removal of `lockPath` that proper-lockfile started and did not wait for: true once the
   * directory is gone, false if the rmdir failed; undefined when none is in flight.
   */
  removal(lockPath: string): Promise<boolean> | undefined;
}

const lockFsByFs = new WeakMap<FileSystem, LockFs>();

/**
 * When a lock fails after its mkdir (probing the lock's mtime), proper-lockfile removes the lock
 * directory with an rmdir it does not wait for, and reports the failure at once. A claim retried
 * right away could then take the lock and have that late rmdir remove it. Counting those rmdirs
 * lets the failed lock wait for them. One wrapper per file system, so that proper-lockfile's
 * mtime-precision probe, cached on the object it is given, runs once.
 * @internal
 */
export function lockFs(fs: FileSystem): LockFs {
  const known = lockFsByFs.get(fs);
  if (known) return known;
  const inFlight = new Map<string, Promise<boolean>>();
  const base = fs as unknown as CallbackRmdir;
  const wrapped = Object.create(fs) as FileSystem & CallbackRmdir;
  wrapped.rmdir = (path, callback) => {
    let settle: (removed: boolean) => void = () => {};
    const done = new Promise<boolean>((resolve) => (settle = resolve));
    inFlight.set(path, done);
    base.rmdir(path, (err) => {
      if (inFlight.get(path) === done) inFlight.delete(path);
      settle(!err || err.code === 'ENOENT');
      callback(err);
    });
  };
  const created: LockFs = { fs: wrapped, removal: (lockPath) => inFlight.get(lockPath) };
  lockFsByFs.set(fs, created);
  return created;
}
