import { isGone, MountPointError, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { O_NOFOLLOW, fs } from './fs.js';
import { isRetried, retryDelays, sleepSync } from './holds.js';
import { mountIdOf, parentMountIdOf } from './mounts.js';
import { procFd, procFdPath, procIsOurs } from './proc.js';
import { removeTreeSyncWalk, walkTree, walkTreeSync, type WalkOptions, type WalkTally } from './walk.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');

// Removal never follows a symlink: unlink() removes the link itself, and trees are walked
// through descriptors of the directories opened with O_NOFOLLOW (see walk.ts). It never crosses
// into another file system either: a mount point is left, and reported once the rest is gone.

/** Unlinks a file (reached through `access`, named `path` in errors); what is already gone is not an error. */
export async function unlinkQuietly(access: string, path = access): Promise<void> {
  try {
    await fs.promises.unlink(access);
  } catch (err) {
    if (!isGone(systemErrorCode(err))) throw toFileSystemError('remove', path, err);
  }
}

/** Sync twin of {@link unlinkQuietly}. */
export function unlinkQuietlySync(access: string, path = access): void {
  try {
    fs.unlinkSync(access);
  } catch (err) {
    if (!isGone(systemErrorCode(err))) throw toFileSystemError('remove', path, err);
  }
}

/**
 * Removes a file as Windows lets a held one go (rimraf's move-remove): renamed to `aside` (a
 * set-aside name in the session, or an entry's name taken for removal) first, which frees its name
 * at once even where its unlink would leave it listed (delete pending: another handle shares
 * delete access), then unlinked there. A hold that refuses the rename too is retried (holds.ts),
 * then reported; what the unlink leaves is removed with the session, or by a sweep. `'gone'`
 * when nothing was at the name.
 * @internal
 */
export async function unlinkAside(access: string, path: string, aside: string): Promise<'removed' | 'gone'> {
  const delays = retryDelays(false);
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.promises.rename(access, aside);
      break;
    } catch (err) {
      if (!renameRetried(err, attempt, delays, path)) return 'gone';
      await new Promise((resolve) => setTimeout(resolve, delays[attempt]));
    }
  }
  await fs.promises.unlink(aside).catch(() => {}); // still held: its session's close, or a sweep, removes it
  return 'removed';
}

/** Sync twin of {@link unlinkAside}, with the shorter wait of sync removals. @internal */
export function unlinkAsideSync(access: string, path: string, aside: string): 'removed' | 'gone' {
  const delays = retryDelays(true);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.renameSync(access, aside);
      break;
    } catch (err) {
      if (!renameRetried(err, attempt, delays, path)) return 'gone';
      sleepSync(delays[attempt] ?? 0);
    }
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    // still held: its session's close, or a sweep, removes it
  }
  return 'removed';
}

/** After a failed rename aside: false when the file is gone; true to retry; throws once the retries are spent. */
function renameRetried(err: unknown, attempt: number, delays: readonly number[], path: string): boolean {
  const code = systemErrorCode(err);
  if (isGone(code)) return false;
  if (isRetried(code) && attempt < delays.length) return true;
  throw toFileSystemError('remove', path, err);
}

/** How {@link removeTree} reaches the tree when not by its path. @internal */
export type RemoveVia = Pick<WalkOptions, 'access' | 'parentDev' | 'keepTop' | 'setAsideIn'>;

/**
 * Removes a directory tree (or a file, or a link); what is already gone is not an error. Throws
 * the first failure, or a {@link MountPointError} when all that is left are mount points. `via`
 * reaches it through a pinned directory; errors still name `path`.
 */
export async function removeTree(path: string, via: RemoveVia = {}): Promise<void> {
  throwWhatWasLeft(await walkTree(path, { remove: true, bytes: false, ...via }));
}

/** Sync twin of {@link removeTree}. */
export function removeTreeSync(path: string, via: RemoveVia = {}): void {
  throwWhatWasLeft(via.access === undefined ? removeTreeSyncWalk(path) : walkTreeSync(path, { remove: true, bytes: false, ...via }));
}

function throwWhatWasLeft(tally: WalkTally): void {
  const first = tally.errors[0];
  if (first) throw toFileSystemError('remove', first.path, Object.assign(new Error(first.message), { code: first.code }));
  if (tally.left.length > 0) throw new MountPointError(tally.left.map((left) => left.path));
}

const OPEN_DIR = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | O_NOFOLLOW;

/**
 * The quick removal of a directory already listed, holding only the files `names`: it is opened
 * with O_NOFOLLOW, checked to be on `parentDev` and on its parent's mount (no mount point, even a
 * bind mount of the same file system made a moment ago), its files unlinked through its descriptor
 * (`/proc/<pid>/fd/<fd>/<name>`, only where `/proc` is this process's own), then it is removed.
 * `'removed'` when it is gone; `'changed'` when it is no longer as listed (a name gone or added, a
 * symlink in its place): nothing more is removed, and the next look judges it again; `'walk'` when
 * this cannot be done here (no /proc, another device or mount, a permission to restore):
 * the caller walks it with {@link walkTree}, which handles and reports those.
 * @internal
 */
export async function removeListedFlatDir(
  dir: string,
  names: readonly string[],
  parentDev: number | undefined,
): Promise<'removed' | 'changed' | 'walk'> {
  if (!procIsOurs() || !procFd() || parentDev === undefined) return 'walk';
  // open, fstat and close of a directory just listed do no I/O: made here, they spare three trips
  // through the thread pool per entry. The unlinks and the rmdir, which write, go through it.
  let fd: number;
  try {
    fd = fs.openSync(dir, OPEN_DIR);
  } catch (err) {
    const code = systemErrorCode(err);
    return isGone(code) || code === 'ELOOP' || code === 'ENOTDIR' ? 'changed' : 'walk';
  }
  try {
    const dev = deviceOf(fd);
    if (dev !== parentDev) return dev === 'gone' ? 'changed' : 'walk';
    if (!onParentsMount(fd, dir)) return 'walk';
    const pinned = procFdPath(fd);
    for (const name of names) {
      try {
        await fs.promises.unlink(`${pinned}/${name}`);
      } catch (err) {
        return systemErrorCode(err) === 'EACCES' ? 'walk' : 'changed';
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  try {
    await fs.promises.rmdir(dir);
    return 'removed';
  } catch (err) {
    const code = systemErrorCode(err);
    return code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || isGone(code) ? 'changed' : 'walk';
  }
}

/** The device of an open directory; 'gone' once it was removed (ESTALE on sshfs and NFS). */
function deviceOf(fd: number): number | 'gone' | undefined {
  try {
    return fs.fstatSync(fd).dev;
  } catch (err) {
    return isGone(systemErrorCode(err)) ? 'gone' : undefined;
  }
}

/** Whether the directory open at `fd` (reached by `dir`) is on the same mount as its parent: not a mount point. */
function onParentsMount(fd: number, dir: string): boolean {
  try {
    const own = mountIdOf(fd);
    return own === undefined || own === parentMountIdOf(fd, dir);
  } catch {
    return false; // fdinfo unreadable (EMFILE...): the walk judges it, and reports what fails
  }
}
