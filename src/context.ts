import type { Accounting } from './accounting.js';
import type { FreeSpace } from './free-space.js';
import type { FileSystem } from './fs.js';

/** What a handle needs from the manager that made it. @internal */
export interface ManagerContext {
  readonly fs: FileSystem;
  /** The manager's default name prefix, already validated. */
  readonly prefix: string;
  /** The session directory, opened on first use; throws once the manager is closed. */
  sessionDir(): string;
  /** Live files and bytes, and the `maxLiveBytes` quota. */
  readonly accounting: Accounting;
  /** Free space on the root's file system, and the `minFreeBytes` floor. */
  readonly freeSpace: FreeSpace;
  /** `<root>/handoff`, created on first use. */
  handoffDir(): string;
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
