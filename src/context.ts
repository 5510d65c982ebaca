import type { Accounting } from './write/accounting.js';
import type { FreeSpace } from './write/free-space.js';
import type { FileSystem } from './disk/fs.js';
import type { SessionPlaces } from './lifetime/session.js';

/**
 * A root and the rules every part that touches it shares: the sessions, the sweep, the leases.
 * A manager builds one; the CLI builds one from its flags. @internal
 */
export interface RootContext {
  readonly fs: FileSystem;
  /** The absolute root directory. */
  readonly root: string;
  /** A heartbeat seen unchanged for this long has stopped. */
  readonly staleMs: number;
  /** An owner that cannot be checked is watched for at least this long before it is judged. */
  readonly graceMs: number;
  /** This host's id (informative; see docs/crash-recovery.md). */
  readonly hostId: string;
  /** Throws `RootChangedError` when the root's path no longer names the manager's root (a manager's sweeps). */
  readonly verifyRoot?: () => void;
  /**
   * The root as system calls reach it: the manager's descriptor of it (`/proc/<pid>/fd/<fd>`),
   * checked to be the root it was made with. Without it (the CLI), a sweep opens the root itself.
   */
  readonly rootBase?: () => string;
}

/** What a handle needs from the manager that made it. @internal */
export interface ManagerContext {
  readonly fs: FileSystem;
  /** The manager's default name prefix, already validated. */
  readonly prefix: string;
  /**
   * The session directory, opened on first use: its public path and the base its entries are
   * reached through (its descriptor's /proc path). Throws once the manager is closed.
   */
  session(): SessionPlaces;
  /**
   * Throws `RootChangedError` once the root's or the session's path no longer names the directory
   * the manager made: called before every create or remove (cheap: see `Session.check`).
   */
  checkRoot(): void;
  /** How the root's entries are reached (its descriptor's /proc path, or its checked path). */
  rootBase(): string;
  /** Live files and bytes, and the `maxLiveBytes` quota. */
  readonly accounting: Accounting;
  /** Free space on the root's file system, and the `minFreeBytes` floor. */
  readonly freeSpace: FreeSpace;
  /** The manager's root. */
  readonly root: string;
  /**
   * True once the session is open on a local file system (`local-disk.ts`): a close, and the
   * write and unlink of a small file, are then made inline rather than in the thread pool.
   */
  localDisk(): boolean;
}

/** A handle that owns something on disk and can be removed. @internal */
export interface Removable {
  remove(): Promise<void>;
  removeSync(): void;
  /** Forget the disk object without touching it (its session directory is being removed whole). */
  abandon(): void;
}

/** Something that holds handles: a scope, or the manager's root scope. @internal */
export interface Owner {
  adopt(handle: Removable): void;
  forget(handle: Removable): void;
}
