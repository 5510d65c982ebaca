import { systemErrorCode, toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';

// Removal never follows a symlink: unlink() removes the link itself, and rm() walks with lstat.
const RM_TREE = { recursive: true, force: true, maxRetries: 2 } as const;

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

/** Removes a directory tree; what is already gone is not an error. */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.promises.rm(path, RM_TREE);
  } catch (err) {
    throw toFileSystemError('remove', path, err);
  }
}

/** Sync twin of {@link removeTree}. */
export function removeTreeSync(fs: FileSystem, path: string): void {
  try {
    fs.rmSync(path, RM_TREE);
  } catch (err) {
    throw toFileSystemError('remove', path, err);
  }
}
