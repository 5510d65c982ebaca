import type { Dirent } from 'node:fs';
import path from 'node:path';
import { systemErrorCode } from './errors.js';
import type { FileSystem } from './fs.js';

/** A failure met while walking or removing, with the path it was about. */
export interface PathError {
  /** The path the failure was about. */
  readonly path: string;
  /** The system error code (`EACCES`, `EIO`, ...). */
  readonly code: string;
  /** The system error's message. */
  readonly message: string;
}

/** Tallies of a walk. */
export interface WalkTally {
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: PathError[];
}

/** What to do at each entry of a walk. */
export interface WalkOptions {
  readonly fs: FileSystem;
  /** Remove what is walked (files, links, then directories bottom-up); else only count. */
  readonly remove: boolean;
  /** Called after each batch with the running tally. */
  readonly onBatch?: (tally: WalkTally) => void;
}

/** How many file operations a walk keeps in flight (libuv runs 4 at once by default). */
const WINDOW = 32;

export function emptyTally(): WalkTally {
  return { files: 0, dirs: 0, bytes: 0, errors: [] };
}

/**
 * Walks (and, with `remove`, deletes) the tree at `root` without ever following a symlink: entry
 * types come from readdir, and a link is counted and removed as a link. Asynchronous and
 * batched, so the event loop never stalls; tolerant of entries vanishing under it (another
 * sweeper), which are simply not counted.
 */
export async function walkTree(root: string, options: WalkOptions, tally: WalkTally = emptyTally()): Promise<WalkTally> {
  const stat = await lstatOrNull(options.fs, root, tally);
  if (!stat) return tally;
  if (stat.isDirectory()) await walkDir(root, options, tally);
  else await visitFile(root, options, tally);
  return tally;
}

async function walkDir(dir: string, options: WalkOptions, tally: WalkTally): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await options.fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    recordUnlessGone(tally, dir, err);
    return;
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const entry of entries) (entry.isDirectory() ? dirs : files).push(path.join(dir, entry.name));
  for (let i = 0; i < files.length; i += WINDOW) {
    await Promise.all(files.slice(i, i + WINDOW).map((file) => visitFile(file, options, tally)));
    options.onBatch?.(tally);
  }
  for (const sub of dirs) await walkDir(sub, options, tally);
  await finishDir(dir, options, tally);
}

async function visitFile(file: string, options: WalkOptions, tally: WalkTally): Promise<void> {
  const stat = await lstatOrNull(options.fs, file, tally);
  if (!stat) return;
  if (options.remove) {
    try {
      await options.fs.promises.unlink(file);
    } catch (err) {
      recordUnlessGone(tally, file, err);
      return;
    }
  }
  tally.files += 1;
  tally.bytes += stat.size;
}

async function finishDir(dir: string, options: WalkOptions, tally: WalkTally): Promise<void> {
  if (options.remove) {
    try {
      await options.fs.promises.rmdir(dir);
    } catch (err) {
      recordUnlessGone(tally, dir, err);
      return;
    }
  }
  tally.dirs += 1;
}

async function lstatOrNull(fs: FileSystem, file: string, tally: WalkTally) {
  try {
    return await fs.promises.lstat(file);
  } catch (err) {
    recordUnlessGone(tally, file, err);
    return null;
  }
}

function recordUnlessGone(tally: WalkTally, file: string, err: unknown): void {
  const code = systemErrorCode(err) ?? 'EUNKNOWN';
  if (code === 'ENOENT') return;
  tally.errors.push({ path: file, code, message: err instanceof Error ? err.message : String(err) });
}
