import * as nodeFs from 'node:fs';
import path from 'node:path';
import { realFs, type FsLayer } from './fs-layer.js';
import { systemError } from './faulty-fs.js';

/**
 * How another handle holds a file on Windows:
 * - `'no-delete-sharing'` (an antivirus scan, a program that opened it without FILE_SHARE_DELETE):
 *   its open, unlink and rename fail with EBUSY (a sharing violation), a rename of a directory
 *   above it with EPERM (access denied), and its directory's rmdir with ENOTEMPTY (it is there).
 * - `'delete-sharing'` (Node's own streams, an indexer; FAT, shares and Wine, which have no POSIX
 *   delete): its unlink "succeeds" but the name stays listed, delete pending, until the handle
 *   closes; a pending name's open, lstat, unlink and rename fail with EPERM, and its directory's
 *   rmdir with ENOTEMPTY. Before its unlink it can be renamed, and so can a directory above it.
 * Either way a rename over it fails with EPERM.
 */
export type HoldKind = 'no-delete-sharing' | 'delete-sharing';

/** A hold on one file, as `WindowsFs.hold()` made it. */
export interface Hold {
  readonly kind: HoldKind;
  /** Where the held file is now (renames through the layer follow it). */
  readonly path: string;
  /** Its unlink succeeded and it waits for the hold's end to go. */
  readonly pending: boolean;
  /** Ends the hold: a pending file goes now, as when the last handle closes. */
  release(): void;
}

interface HoldState {
  kind: HoldKind;
  path: string;
  pending: boolean;
  timer: NodeJS.Timeout | undefined;
}

const PROC_FD = /^\/proc\/(self|\d+)\/fd\/(\d+)(\/.*)?$/;

/**
 * A file system with Windows semantics over the real one, for the unit tests on Linux: it says
 * `platform: 'win32'`, and `hold()` makes another handle hold a file, for good or for a while.
 * Paths through `/proc/<pid>/fd/<fd>` (pinned directories) are resolved to the directory they
 * lead to, so a hold is found whichever way the library reaches the file.
 */
export class WindowsFs {
  readonly fs: FsLayer;
  /** Calls refused because of a hold, by method. */
  readonly refused = new Map<string, number>();
  private readonly holds = new Set<HoldState>();

  constructor(base: FsLayer = realFs) {
    const layer = this;
    this.fs = {
      ...base,
      platform: 'win32',
      openSync: ((file: nodeFs.PathLike, ...rest: unknown[]) => {
        layer.checkOpen('openSync', String(file));
        return (base.openSync as (...a: unknown[]) => number)(file, ...rest);
      }) as FsLayer['openSync'],
      lstatSync: ((file: nodeFs.PathLike, ...rest: unknown[]) => {
        layer.checkPending('lstatSync', String(file), 'lstat');
        return (base.lstatSync as (...a: unknown[]) => unknown)(file, ...rest);
      }) as FsLayer['lstatSync'],
      unlinkSync: ((file: nodeFs.PathLike) => {
        if (layer.unlinkHeld('unlinkSync', String(file))) return;
        base.unlinkSync(file);
      }) as FsLayer['unlinkSync'],
      renameSync: ((from: nodeFs.PathLike, to: nodeFs.PathLike) => {
        const moved = layer.checkRename('renameSync', String(from), String(to));
        base.renameSync(from, to);
        moved();
      }) as FsLayer['renameSync'],
      rmdirSync: ((dir: nodeFs.PathLike) => {
        layer.checkRmdir('rmdirSync', String(dir));
        base.rmdirSync(dir);
      }) as FsLayer['rmdirSync'],
      promises: {
        ...base.promises,
        open: (async (file: nodeFs.PathLike, ...rest: unknown[]) => {
          layer.checkOpen('open', String(file));
          return (base.promises.open as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
        }) as FsLayer['promises']['open'],
        lstat: (async (file: nodeFs.PathLike, ...rest: unknown[]) => {
          layer.checkPending('lstat', String(file), 'lstat');
          return (base.promises.lstat as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
        }) as FsLayer['promises']['lstat'],
        unlink: async (file: nodeFs.PathLike) => {
          if (layer.unlinkHeld('unlink', String(file))) return;
          await base.promises.unlink(file);
        },
        rename: async (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
          const moved = layer.checkRename('rename', String(from), String(to));
          await base.promises.rename(from, to);
          moved();
        },
        rmdir: (async (dir: nodeFs.PathLike) => {
          layer.checkRmdir('rmdir', String(dir));
          await base.promises.rmdir(dir);
        }) as FsLayer['promises']['rmdir'],
      },
    };
  }

  /** Another handle holds the file at `file` (a real path), until `release()` or, with `forMs`, for that long. */
  hold(file: string, kind: HoldKind, forMs?: number): Hold {
    const state: HoldState = { kind, path: canonical(file), pending: false, timer: undefined };
    this.holds.add(state);
    const release = () => this.end(state);
    if (forMs !== undefined) state.timer = setTimeout(release, forMs);
    return {
      kind,
      get path() {
        return state.path;
      },
      get pending() {
        return state.pending;
      },
      release,
    };
  }

  /** Ends every hold still on. */
  releaseAll(): void {
    for (const state of [...this.holds]) this.end(state);
  }

  /** Holds still on. */
  get active(): number {
    return this.holds.size;
  }

  private end(state: HoldState): void {
    if (!this.holds.delete(state)) return;
    clearTimeout(state.timer);
    if (state.pending) nodeFs.rmSync(state.path, { force: true });
  }

  private at(file: string): HoldState | undefined {
    const where = canonical(file);
    for (const state of this.holds) if (state.path === where) return state;
    return undefined;
  }

  private under(dir: string): HoldState[] {
    const prefix = canonical(dir) + path.sep;
    return [...this.holds].filter((state) => state.path.startsWith(prefix));
  }

  private refuse(method: string, code: string, syscall: string, file: string): never {
    this.refused.set(method, (this.refused.get(method) ?? 0) + 1);
    throw systemError(code, syscall, file);
  }

  private checkOpen(method: string, file: string): void {
    const state = this.at(file);
    if (!state) return;
    if (state.pending) this.refuse(method, 'EPERM', 'open', file);
    if (state.kind === 'no-delete-sharing') this.refuse(method, 'EBUSY', 'open', file);
  }

  private checkPending(method: string, file: string, syscall: string): void {
    if (this.at(file)?.pending) this.refuse(method, 'EPERM', syscall, file);
  }

  /** True when the unlink "succeeded" without removing the name (delete pending). */
  private unlinkHeld(method: string, file: string): boolean {
    const state = this.at(file);
    if (!state) return false;
    if (state.pending) this.refuse(method, 'EPERM', 'unlink', file);
    if (state.kind === 'no-delete-sharing') this.refuse(method, 'EBUSY', 'unlink', file);
    state.pending = true;
    return true;
  }

  /** Refuses a rename a hold forbids; else returns what moves the holds along once it is done. */
  private checkRename(method: string, from: string, to: string): () => void {
    if (this.at(to)) this.refuse(method, 'EPERM', 'rename', to);
    const state = this.at(from);
    if (state?.pending) this.refuse(method, 'EPERM', 'rename', from);
    if (state?.kind === 'no-delete-sharing') this.refuse(method, 'EBUSY', 'rename', from);
    const below = this.under(from);
    if (below.some((held) => held.kind === 'no-delete-sharing')) this.refuse(method, 'EPERM', 'rename', from);
    const source = canonical(from);
    const target = canonical(to);
    return () => {
      if (state) state.path = target;
      for (const held of below) held.path = target + held.path.slice(source.length);
    };
  }

  private checkRmdir(method: string, dir: string): void {
    const state = this.at(dir);
    if (state) this.refuse(method, state.pending ? 'EPERM' : 'EBUSY', 'rmdir', dir);
  }
}

/** The real path a path of the library names: one through `/proc/<pid>/fd/<fd>` resolved by its link. */
export function canonical(file: string): string {
  const match = PROC_FD.exec(file);
  if (!match) return path.resolve(file);
  const [, pid, fd, rest] = match;
  let dir: string;
  try {
    dir = nodeFs.readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return path.resolve(file);
  }
  return path.resolve(dir + (rest ?? ''));
}
