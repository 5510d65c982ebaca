import type { Dirent } from 'node:fs';
import path from 'node:path';
import { systemErrorCode } from './errors.js';
import type { FileSystem } from './fs.js';
import { openPinned, openPinnedSync, type PinnedDir } from './pinned-dir.js';

/** A failure met while walking or removing, with the path it was about. */
export interface PathError {
  /** The path the failure was about. */
  readonly path: string;
  /** The system error code (`EACCES`, `EIO`, ...). */
  readonly code: string;
  /** The system error's message. */
  readonly message: string;
}

/** Tallies of a walk. @internal */
export interface WalkTally {
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: PathError[];
}

/** What to do at each entry of a walk. @internal */
export interface WalkOptions {
  readonly fs: FileSystem;
  /** Remove what is walked (files, links, then directories bottom-up); else only count. */
  readonly remove: boolean;
  /** Count the bytes of files (one `lstat` each); a removal that reports no bytes skips it. @default true */
  readonly bytes?: boolean;
  /** Called every {@link WINDOW} files with the running tally. */
  readonly onBatch?: (tally: WalkTally) => void;
}

/** How many file operations a walk keeps in flight (libuv runs 4 at once by default). */
const WINDOW = 32;

/**
 * The root, or a directory, as the walk reaches it: `logical` for reports, `access` for system
 * calls. Once a directory is open, its entries are reached through `/proc/self/fd/<fd>/<name>`:
 * the kernel resolves that inside the directory that was opened, so swapping the directory for a
 * symlink afterwards cannot send the walk anywhere else. A file's report path is built from its
 * parent's only when it fails.
 */
interface Ref {
  readonly logical: string;
  readonly access: string;
}

/** An empty tally. @internal */
export function emptyTally(): WalkTally {
  return { files: 0, dirs: 0, bytes: 0, errors: [] };
}

/**
 * Walks (and, with `remove`, deletes) the tree at `root` without ever following a symlink:
 * directories are opened with O_NOFOLLOW and their entries reached through the open descriptor,
 * and a link is counted and removed as a link. Asynchronous, with a bounded window of calls in
 * flight, so the event loop never stalls; tolerant of entries vanishing under it (another
 * sweeper), which are not counted.
 * @internal
 */
export async function walkTree(root: string, options: WalkOptions, tally: WalkTally = emptyTally()): Promise<WalkTally> {
  await walkEntry({ logical: root, access: root }, options, tally);
  return tally;
}

async function walkEntry(ref: Ref, options: WalkOptions, tally: WalkTally): Promise<void> {
  const opened = await openDir(options.fs, ref, tally);
  if (opened === 'gone') return;
  if (opened === 'not-a-dir') {
    await visitFile(ref.access, ref.logical, '', options, tally);
    return;
  }
  try {
    await walkChildren(ref, opened.base, options, tally);
  } finally {
    await opened.close();
  }
  await finishDir(ref, options, tally);
}

async function walkChildren(ref: Ref, base: string, options: WalkOptions, tally: WalkTally): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await options.fs.promises.readdir(base, { withFileTypes: true });
  } catch (err) {
    recordUnlessGone(tally, ref.logical, err);
    return;
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const entry of entries) (entry.isDirectory() ? dirs : files).push(entry.name);
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const name = files[next++] as string;
      await visitFile(childPath(base, name), ref.logical, name, options, tally);
      if (++done % WINDOW === 0) options.onBatch?.(tally);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, files.length) }, lane));
  options.onBatch?.(tally);
  for (const name of dirs) {
    await walkEntry({ logical: path.join(ref.logical, name), access: childPath(base, name) }, options, tally);
  }
}

async function openDir(fs: FileSystem, ref: Ref, tally: WalkTally): Promise<PinnedDir | 'gone' | 'not-a-dir'> {
  try {
    return await openPinned(fs, ref.access);
  } catch (err) {
    recordUnlessGone(tally, ref.logical, err);
    return 'gone';
  }
}

/** Visits the file at `access`; its report path, for an error, is `name` inside `parent`. */
async function visitFile(access: string, parent: string, name: string, options: WalkOptions, tally: WalkTally): Promise<void> {
  let size = 0;
  try {
    if (options.bytes !== false || !options.remove) size = (await options.fs.promises.lstat(access)).size;
    if (options.remove) await options.fs.promises.unlink(access);
  } catch (err) {
    recordUnlessGone(tally, path.join(parent, name), err);
    return;
  }
  tally.files += 1;
  tally.bytes += size;
}

async function finishDir(ref: Ref, options: WalkOptions, tally: WalkTally): Promise<void> {
  if (options.remove) {
    try {
      await options.fs.promises.rmdir(ref.access);
    } catch (err) {
      recordUnlessGone(tally, ref.logical, err);
      return;
    }
  }
  tally.dirs += 1;
}

/** `name` (a directory entry: never a `/` in it) inside `base`. */
function childPath(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

/**
 * Synchronous removal of the tree at `root`, by the same rules as {@link walkTree}: for `using`
 * and the exit hook, which cannot wait. Bytes are not counted.
 * @internal
 */
export function removeTreeSyncWalk(fs: FileSystem, root: string, tally: WalkTally = emptyTally()): WalkTally {
  removeEntrySync(fs, { logical: root, access: root }, tally);
  return tally;
}

function removeEntrySync(fs: FileSystem, ref: Ref, tally: WalkTally): void {
  let opened: ReturnType<typeof openPinnedSync>;
  try {
    opened = openPinnedSync(fs, ref.access);
  } catch (err) {
    recordUnlessGone(tally, ref.logical, err);
    return;
  }
  if (opened === 'gone') return;
  if (opened === 'not-a-dir') {
    unlinkSyncCounted(fs, ref.access, ref.logical, '', tally);
    return;
  }
  try {
    for (const entry of fs.readdirSync(opened.base, { withFileTypes: true })) {
      const access = childPath(opened.base, entry.name);
      // Entry types come from readdir and never follow a link: only directories need opening.
      if (entry.isDirectory()) removeEntrySync(fs, { logical: path.join(ref.logical, entry.name), access }, tally);
      else unlinkSyncCounted(fs, access, ref.logical, entry.name, tally);
    }
  } catch (err) {
    recordUnlessGone(tally, ref.logical, err);
  } finally {
    opened.close();
  }
  try {
    fs.rmdirSync(ref.access);
    tally.dirs += 1;
  } catch (err) {
    recordUnlessGone(tally, ref.logical, err);
  }
}

function unlinkSyncCounted(fs: FileSystem, access: string, parent: string, name: string, tally: WalkTally): void {
  try {
    fs.unlinkSync(access);
    tally.files += 1;
  } catch (err) {
    recordUnlessGone(tally, path.join(parent, name), err);
  }
}

function recordUnlessGone(tally: WalkTally, file: string, err: unknown): void {
  const code = systemErrorCode(err) ?? 'EUNKNOWN';
  if (code === 'ENOENT') return;
  tally.errors.push({ path: file, code, message: err instanceof Error ? err.message : String(err) });
}
