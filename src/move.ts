import path from 'node:path';
import fsExtra from 'fs-extra';
import { DestinationExistsError, InvalidOptionError, systemErrorCode, toFileSystemError } from './errors.js';
import type { FileSystem } from './fs.js';
import { describe } from './names.js';

/** Options of `keep()`. */
export interface KeepOptions {
  /** Replace a file already at the destination. Default: false (refuse with `ERR_TEMPFILE_DESTINATION_EXISTS`). */
  readonly overwrite?: boolean;
}

/** Checks a `keep()` destination and makes it absolute. */
export function resolveDestination(destination: unknown): string {
  if (typeof destination !== 'string' || destination.length === 0 || destination.includes('\0')) {
    throw new InvalidOptionError(
      'destination',
      `keep() needs a destination path as a non-empty string, got ${describe(destination)}.`,
    );
  }
  return path.resolve(destination);
}

/**
 * Moves a file for good: an atomic rename on one file system (with `link` + `unlink` when it
 * must not replace anything), copy and delete across file systems.
 */
export async function moveFile(fs: FileSystem, from: string, to: string, options: KeepOptions): Promise<void> {
  if (options.overwrite) await moveReplacing(fs, from, to);
  else await moveNoClobber(fs, from, to);
}

async function moveReplacing(fs: FileSystem, from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (err) {
    if (systemErrorCode(err) !== 'EXDEV') throw toFileSystemError('keep the file at', to, err);
    await moveAcrossDevices(from, to, true);
  }
}

// link() fails with EEXIST instead of replacing: an atomic "rename unless it exists".
async function moveNoClobber(fs: FileSystem, from: string, to: string): Promise<void> {
  try {
    await fs.promises.link(from, to);
  } catch (err) {
    const code = systemErrorCode(err);
    if (code === 'EEXIST') throw new DestinationExistsError(to, err);
    if (code === 'EXDEV') return moveAcrossDevices(from, to, false);
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') return renameIfAbsent(fs, from, to);
    throw toFileSystemError('keep the file at', to, err);
  }
  try {
    await fs.promises.unlink(from);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', from, err);
  }
}

// For file systems without hard links: a check, then a rename (not atomic against a racer).
async function renameIfAbsent(fs: FileSystem, from: string, to: string): Promise<void> {
  try {
    await fs.promises.lstat(to);
    throw new DestinationExistsError(to);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('keep the file at', to, err);
  }
  try {
    await fs.promises.rename(from, to);
  } catch (err) {
    throw toFileSystemError('keep the file at', to, err);
  }
}

async function moveAcrossDevices(from: string, to: string, overwrite: boolean): Promise<void> {
  try {
    await fsExtra.move(from, to, { overwrite });
  } catch (err) {
    if (!overwrite && err instanceof Error && /already exists/.test(err.message)) {
      throw new DestinationExistsError(to, err);
    }
    throw toFileSystemError('keep the file at', to, err);
  }
}
