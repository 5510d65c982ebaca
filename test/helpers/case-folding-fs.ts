import * as nodeFs from 'node:fs';
import path from 'node:path';
import { realFs, type FsLayer } from './fs-layer.js';

/** Two names are one file when they fold alike, as on APFS's default (case-insensitive, case-preserving). */
const fold = (name: string) => name.normalize('NFD').toLowerCase();

/**
 * A path as a case-insensitive file system reads it: each component that does not exist as
 * written, but exists under another case, is taken as that existing name; a new name keeps the
 * case it was given. Paths through `/proc/<pid>/fd/<fd>` fold too (their directories are listed).
 */
export function foldedPath(file: string): string {
  if (!path.isAbsolute(file)) return file;
  let current = '/';
  for (const name of file.split('/')) {
    if (name === '') continue;
    const exact = path.join(current, name);
    if (exists(exact)) {
      current = exact;
      continue;
    }
    let match: string | undefined;
    try {
      match = nodeFs.readdirSync(current).find((entry) => fold(entry) === fold(name));
    } catch {
      match = undefined;
    }
    current = path.join(current, match ?? name);
  }
  return file.endsWith('/') && current !== '/' ? `${current}/` : current;
}

function exists(file: string): boolean {
  try {
    nodeFs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

type AnyFunction = (...args: unknown[]) => unknown;

/** `method` with its first `paths` arguments folded. */
function folding(method: AnyFunction, paths: number): AnyFunction {
  return (...args: unknown[]) => method(...args.map((arg, i) => (i < paths && typeof arg === 'string' ? foldedPath(arg) : arg)));
}

const SYNC_ONE = [
  'openSync', 'mkdirSync', 'readdirSync', 'lstatSync', 'unlinkSync', 'rmSync', 'chmodSync', 'opendirSync', 'rmdirSync',
  'statSync', 'utimesSync', 'readlinkSync', 'realpathSync', 'statfsSync', 'createReadStream', 'createWriteStream', 'open',
] as const;
const SYNC_TWO = ['linkSync', 'renameSync'] as const;
const ASYNC_ONE = ['unlink', 'rm', 'rmdir', 'mkdir', 'lstat', 'open', 'readdir', 'statfs', 'opendir'] as const;
const ASYNC_TWO = ['link', 'rename', 'copyFile'] as const;

/**
 * The real file system seen as a case-insensitive one: `Report.pdf` and `report.pdf` are one
 * file. This kernel has neither ext4's casefold nor vfat, so the folding is done on each path.
 */
export function caseFoldingFs(base: FsLayer = realFs): FsLayer {
  const fsObject: Record<string, unknown> = { ...base };
  for (const name of SYNC_ONE) fsObject[name] = folding(base[name] as AnyFunction, 1);
  for (const name of SYNC_TWO) fsObject[name] = folding(base[name] as AnyFunction, 2);
  fsObject['symlinkSync'] = (target: string, file: string, type?: string) => base.symlinkSync(target, foldedPath(file), type as never);
  const promises: Record<string, unknown> = { ...base.promises };
  for (const name of ASYNC_ONE) promises[name] = folding(base.promises[name] as AnyFunction, 1);
  for (const name of ASYNC_TWO) promises[name] = folding(base.promises[name] as AnyFunction, 2);
  fsObject['promises'] = promises;
  return fsObject as unknown as FsLayer;
}
