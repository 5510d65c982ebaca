import type { Accounting } from '../limits/accounting.js';
import type { FreeSpace } from '../limits/free-space.js';
import type { HandoffBackend } from '../handoff/backend.js';
import type { SessionPlaces } from '../lifetime/session.js';
import type { LocalDiskKind } from '../disk/local-disk.js';

/** What a handle needs from the manager that made it. @internal */
export interface ManagerContext {
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
  /** Where `handoff()` puts a file when it is given no store: the manager's `<root>/handoff/` (`handoff/disk-backend.ts`). */
  readonly handoff: HandoffBackend;
  /** Live files and bytes, and the `maxLiveBytes` quota. */
  readonly accounting: Accounting;
  /** Free space on the root's file system, and the `minFreeBytes` floor. */
  readonly freeSpace: FreeSpace;
  /** The manager's root. */
  readonly root: string;
  /** True once the manager's `close()` (or its exit hook) began: its session goes, whole. */
  closed(): boolean;
  /**
   * What local file system the session is open on, once it is (`local-disk.ts`): on any, a close,
   * and the write and unlink of a small file, are made inline rather than in the thread pool; on
   * one held in memory, a create too. Undefined when it is not local, or not yet known.
   */
  localDisk(): LocalDiskKind | undefined;
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

// The contexts managers made, in this copy of the library: a handle or a scope is built only over
// one of them, so no caller can build a public class over a context (or a path) of its own.
const madeContexts = new WeakSet<object>();

/** Records `context` as one a manager made; returns it. @internal */
export function madeContext(context: ManagerContext): ManagerContext {
  madeContexts.add(context);
  return context;
}

/**
 * Throws unless `context` is one a manager of this copy of the library made: what a public
 * class's constructor calls first. @internal
 */
export function requireMadeContext(context: unknown, made: string): void {
  if (typeof context !== 'object' || context === null || !madeContexts.has(context)) {
    throw new TypeError(`${made} is not built with new: make one with ${made === 'TempScope' ? 'mgr.scope()' : 'mgr.file(), mgr.dir() or mgr.write()'} (or a scope's).`);
  }
}
