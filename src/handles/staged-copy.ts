import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DestinationExistsError, systemErrorCode, toFileSystemError } from '../errors.js';
import { CREATE_EXCLUSIVE, type FileSystem } from '../disk/fs.js';
import { OPEN_EXISTING, openOwnFileHandle, type FileIdentity } from '../disk/open-checked.js';
import { logger } from '../log.js';
import { keepStagingName } from '../layout.js';
import { randomName } from '../names.js';
import type { PinnedDir } from '../disk/pinned-dir.js';

const log = logger('keep');

/** One `keep()` in progress. */
export interface Move {
  readonly fs: FileSystem;
  /** The source, as acted on (maybe through `/proc/self/fd`). */
  readonly from: string;
  /** The source, as shown in errors. */
  readonly shownFrom: string;
  /** The destination, absolute, as the caller named it: what errors show. */
  readonly to: string;
  /** The destination's directory, opened once. */
  readonly dir: PinnedDir;
  /** The destination name, reached through `dir`: what every step acts on. */
  readonly target: string;
  readonly overwrite: boolean;
  /** The source, opened and checked to be the library's own file before anything moved. */
  readonly source: FileHandle;
  /** The source's device and inode, as opened. */
  readonly identity: FileIdentity;
}

// Never follows a symlink, never blocks on a FIFO or a device at the name (open-checked.ts).
const READ_FLAGS = constants.O_RDONLY | OPEN_EXISTING;
const COPY_CHUNK = 512 * 1024;
const STAGING_ATTEMPTS = 8;
/**
 * Copies the source across file systems without ever writing through the destination name: the
 * bytes go to a fresh staging file (O_CREAT | O_EXCL | O_NOFOLLOW, 0600) next to the destination,
 * are fsync'ed, then take the destination name in one step (`link`, which fails if the name
 * exists, or `rename`, which replaces the name, never what a symlink there points to). Only then,
 * with the directory fsync'ed, is the source removed. A crash at any point leaves the destination
 * absent (or the old file), or complete; at worst a staging name is left over.
 */
export async function copyAcrossDevices(move: Move): Promise<void> {
  const alreadyKept = !move.overwrite && (await destinationTaken(move, move.source));
  if (!alreadyKept) await stageAndPlace(move, move.source);
  await removeSource(move);
}

/**
 * Opens a file to be moved: never following, never blocking, and only if it is the library's own
 * file (a regular file with one link, of `identity` when known), else a `TempFileReplacedError`.
 */
export async function openSource(
  fs: FileSystem,
  from: string,
  shownFrom: string,
  identity: FileIdentity | undefined,
  alsoAccept?: (stat: Stats) => Promise<boolean>,
): Promise<FileHandle> {
  try {
    return await openOwnFileHandle(fs, from, constants.O_RDONLY, identity, shownFrom, alsoAccept);
  } catch (err) {
    throw toFileSystemError('read', shownFrom, err);
  }
}

/** Fails early, before a copy, when the destination is taken; true when it holds this file already. */
async function destinationTaken(move: Move, source: FileHandle): Promise<boolean> {
  try {
    await move.fs.promises.lstat(move.target);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    throw toFileSystemError('check the destination', move.to, err);
  }
  if (await sameBytes(move, source)) return true;
  throw new DestinationExistsError(move.to);
}

async function stageAndPlace(move: Move, source: FileHandle): Promise<void> {
  const { name, handle } = await createStaging(move);
  const staged = path.join(move.dir.base, name);
  let stagedNameLeft = true;
  try {
    try {
      await copyContent(source, handle);
    } catch (err) {
      throw toFileSystemError('copy the file to', move.to, err);
    } finally {
      await handle.close().catch(() => {});
    }
    stagedNameLeft = await place(move, staged, source);
    await move.dir.sync(); // the destination name is on disk before the source, the only other copy, goes
  } finally {
    if (stagedNameLeft) await removeStaging(move, staged, name);
  }
}

async function createStaging(move: Move): Promise<{ name: string; handle: FileHandle }> {
  for (let attempt = 1; ; attempt++) {
    const name = keepStagingName(path.basename(move.to), randomName());
    try {
      return { name, handle: await move.fs.promises.open(path.join(move.dir.base, name), CREATE_EXCLUSIVE, 0o600) };
    } catch (err) {
      if (systemErrorCode(err) !== 'EEXIST' || attempt === STAGING_ATTEMPTS) {
        throw toFileSystemError('create a staging file next to', move.to, err);
      }
    }
  }
}

// Streams in constant memory, keeps the source's times (as a rename would), and fsyncs, so that
// the name placed next is never a file whose bytes are still in flight.
async function copyContent(source: FileHandle, target: FileHandle): Promise<void> {
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let position = 0;
  for (;;) {
    const { bytesRead } = await source.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    let written = 0;
    while (written < bytesRead) {
      const { bytesWritten } = await target.write(buffer, written, bytesRead - written, position + written);
      written += bytesWritten;
    }
    position += bytesRead;
  }
  const stat = await source.stat();
  await target.utimes(stat.atime, stat.mtime);
  await target.sync();
}

// Gives the staged file the destination name; returns whether the staging name is still there.
async function place(move: Move, staged: string, source: FileHandle): Promise<boolean> {
  try {
    if (move.overwrite) await move.fs.promises.rename(staged, move.target);
    else await move.fs.promises.link(staged, move.target);
    return !move.overwrite;
  } catch (err) {
    const code = systemErrorCode(err);
    if (move.overwrite) throw toFileSystemError('keep the file at', move.to, err);
    if (code === 'EEXIST') {
      if (await sameBytes(move, source)) return true;
      throw new DestinationExistsError(move.to, err);
    }
    if (lacksHardLinks(code)) {
      await renameIfAbsent(move, staged);
      return false;
    }
    throw toFileSystemError('keep the file at', move.to, err);
  }
}

async function removeStaging(move: Move, staged: string, name: string): Promise<void> {
  try {
    await move.fs.promises.unlink(staged);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') {
      log('staging file left at %s: %s', path.join(path.dirname(move.to), name), systemErrorCode(err) ?? err);
    }
  }
}

/**
 * Whether the destination already holds this very file: a `keep()` interrupted after the file
 * took its name but before the source was removed. True for the same inode, or for a regular
 * file of this user with exactly the source's bytes; never for a symlink.
 */
export async function holdsSameFile(move: Move): Promise<boolean> {
  return sameBytes(move, move.source);
}

async function sameBytes(move: Move, source: FileHandle): Promise<boolean> {
  let target: FileHandle;
  try {
    target = await move.fs.promises.open(move.target, READ_FLAGS);
  } catch {
    return false; // a symlink (ELOOP), gone, unreadable, or a socket (ENXIO): not ours
  }
  try {
    const [ours, theirs] = await Promise.all([source.stat(), target.stat()]);
    if (!theirs.isFile() || theirs.size !== ours.size || !ownedByThisUser(theirs.uid)) return false;
    if (theirs.dev === ours.dev && theirs.ino === ours.ino) return true;
    return await equalContent(source, target);
  } catch {
    return false;
  } finally {
    await target.close().catch(() => {});
  }
}

function ownedByThisUser(uid: number): boolean {
  return process.geteuid === undefined || uid === process.geteuid();
}

async function equalContent(a: FileHandle, b: FileHandle): Promise<boolean> {
  const left = Buffer.allocUnsafe(COPY_CHUNK);
  const right = Buffer.allocUnsafe(COPY_CHUNK);
  for (let position = 0; ; position += COPY_CHUNK) {
    const [{ bytesRead: leftRead }, { bytesRead: rightRead }] = await Promise.all([
      readFull(a, left, position),
      readFull(b, right, position),
    ]);
    if (leftRead !== rightRead || !left.subarray(0, leftRead).equals(right.subarray(0, rightRead))) return false;
    if (leftRead < COPY_CHUNK) return true;
  }
}

async function readFull(handle: FileHandle, buffer: Buffer, position: number): Promise<{ bytesRead: number }> {
  let total = 0;
  while (total < buffer.length) {
    const { bytesRead } = await handle.read(buffer, total, buffer.length - total, position + total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return { bytesRead: total };
}

/** Whether a failed `link()` says that the file system has no hard links (some FUSE and FAT ones). */
export function lacksHardLinks(code: string | undefined): boolean {
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS';
}

/** For file systems without hard links: a check, then a rename (not atomic against a racer). */
export async function renameIfAbsent(move: Move, from: string): Promise<void> {
  try {
    await move.fs.promises.lstat(move.target);
    throw new DestinationExistsError(move.to);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('keep the file at', move.to, err);
  }
  try {
    await move.fs.promises.rename(from, move.target);
  } catch (err) {
    throw toFileSystemError('keep the file at', move.to, err);
  }
}

/** Removes the source once the destination holds the file; a source already gone is fine. */
export async function removeSource(move: Move): Promise<void> {
  try {
    await move.fs.promises.unlink(move.from);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', move.shownFrom, err);
  }
}
