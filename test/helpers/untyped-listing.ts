import * as nodeFs from 'node:fs';
import type { Dir, Dirent, Stats } from 'node:fs';
import { realFs, type FsLayer } from './fs-layer.js';

/** Called after a name is listed and before it is typed: the moment another party may remove it. */
export type Between = (dir: string, name: string) => void;

/** An entry typed by an lstat, as Node makes one where the kernel gave none (not a plain `Dirent`). */
class TypedByStat {
  constructor(
    readonly name: string,
    readonly parentPath: string,
    private readonly stats: Stats,
  ) {}

  isDirectory(): boolean {
    return this.stats.isDirectory();
  }

  isFile(): boolean {
    return this.stats.isFile();
  }

  isSymbolicLink(): boolean {
    return this.stats.isSymbolicLink();
  }
}

/** Node's lstat of a listed name: a name gone meanwhile fails it with ENOENT (syscall `lstat`). */
function typed(base: FsLayer, dir: string, name: string, between: Between): Dirent {
  between(dir, name);
  return new TypedByStat(name, dir, base.lstatSync(`${dir}/${name}`)) as unknown as Dirent;
}

/**
 * A directory stream as Node's `Dir` reads one on a file system without d_type: each read takes
 * up to `bufferSize` names, lstats each in turn, and a failed lstat rejects the read and drops the
 * rest of its names (the stream has moved past them).
 */
function untypedDir(base: FsLayer, dir: Dir, path: string, bufferSize: number, between: Between): Dir {
  const buffered: Dirent[] = [];
  const readSync = (): Dirent | null => {
    if (buffered.length > 0) return buffered.shift() as Dirent;
    const names: string[] = [];
    for (let entry = dir.readSync(); entry !== null; entry = names.length < bufferSize ? dir.readSync() : null) names.push(entry.name);
    if (names.length === 0) return null;
    for (const name of names) buffered.push(typed(base, path, name, between));
    return buffered.shift() as Dirent;
  };
  return Object.assign(Object.create(dir) as Dir, {
    readSync,
    read: async () => readSync(),
    closeSync: () => dir.closeSync(),
    close: async () => dir.close(),
  });
}

/**
 * `base` as a file system without d_type (ext4 made with `-O ^filetype`) looks through Node:
 * `opendir` streams and `readdir({ withFileTypes })` lstat every name after listing it, and call
 * `between` just before, where a test removes or renames the name. Listings by name alone are
 * untouched, as Node makes no lstat for them.
 */
export function withoutEntryTypes(between: Between, base: FsLayer = realFs): FsLayer {
  const bufferOf = (options?: nodeFs.OpenDirOptions) => options?.bufferSize ?? 32;
  const readdirSync = ((path: string, options?: { withFileTypes?: boolean }) => {
    const names = base.readdirSync(path);
    return options?.withFileTypes ? names.map((name) => typed(base, path, name, between)) : names;
  }) as FsLayer['readdirSync'];
  return {
    ...base,
    readdirSync,
    opendirSync: (path: nodeFs.PathLike, options?: nodeFs.OpenDirOptions) =>
      untypedDir(base, base.opendirSync!(path, options), String(path), bufferOf(options), between),
    promises: {
      ...base.promises,
      readdir: (async (path: string, options?: { withFileTypes?: boolean }) => readdirSync(path, options as never)) as FsLayer['promises']['readdir'],
      opendir: async (path: nodeFs.PathLike, options?: nodeFs.OpenDirOptions) =>
        untypedDir(base, await base.promises.opendir!(path, options), String(path), bufferOf(options), between),
    },
  };
}

/** A {@link Between} that removes (or renames, with `to`) the name `victim` once, the first time it is listed. */
export function vanishOnce(victim: (name: string) => boolean, to?: (name: string) => string): Between & { readonly done: () => boolean } {
  let done = false;
  const between = (dir: string, name: string) => {
    if (done || !victim(name)) return;
    done = true;
    if (to) nodeFs.renameSync(`${dir}/${name}`, `${dir}/${to(name)}`);
    else nodeFs.rmSync(`${dir}/${name}`, { recursive: true });
  };
  return Object.assign(between, { done: () => done });
}
