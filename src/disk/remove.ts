import { MountPointError, systemErrorCode, toFileSystemError } from '../errors.js';
import type { FileSystem } from './fs.js';
import { removeTreeSyncWalk, walkTree, type WalkTally } from './walk.js';

// Removal never follows a symlink: unlink() removes the link itself, and trees are walked
// through descriptors of the directories opened with O_NOFOLLOW (see walk.ts). It never crosses
// into another file system either: a mount point is left, and reported once the rest is gone.

/** Unlinks a file; what is already gone is not an error. */
export async function unlinkQuietly(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.promises.unlink(path);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', path, err);
  }
}

/** Sync twin of {@link unlinkQuietly}. */
export function unlinkQuietlySync(fs: FileSystem, path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', path, err);
  }
}

/**
 * Removes a directory tree (or a file, or a link); what is already gone is not an error. Throws
 * the first failure, or a {@link MountPointError} when all that is left are mount points.
 */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  throwWhatWasLeft(await walkTree(path, { fs, remove: true, bytes: false }));
}

/** Sync twin of {@link removeTree}. */
export function removeTreeSync(fs: FileSystem, path: string): void {
  throwWhatWasLeft(removeTreeSyncWalk(fs, path));
}

function throwWhatWasLeft(tally: WalkTally): void {
  const first = tally.errors[0];
  if (first) throw toFileSystemError('remove', first.path, Object.assign(new Error(first.message), { code: first.code }));
  if (tally.left.length > 0) throw new MountPointError(tally.left.map((left) => left.path));
}
