import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { DestinationExistsError, systemErrorCode, TempFileReplacedError, toFileSystemError } from '../base/errors.js';
import { toDestinationError } from './destination-error.js';
import { CREATE_EXCLUSIVE, fs } from '../disk/fs.js';
import { OPEN_EXISTING, openOwnFileHandle, otherThan, replacedBy, type FileIdentity } from '../disk/open-checked.js';
import { logger } from '../base/log.js';
import { keepStagingName } from '../base/layout.js';
import { randomName } from '../base/random-name.js';
import type { PinnedDir } from '../disk/pinned-dir.js';
import { guardStaging, type StagingGuard } from './staging-at-exit.js';
import { builtin } from '../base/builtin.js';
const { constants } = builtin('node:fs');
const path = builtin('node:path');

const log = logger('keep');

/** One `keep()` in progress. */
export interface Move {
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
 * absent (or the old file), or complete; at worst a staging name is left over. An exit or a
 * signal the process can still run code on leaves no staging name ({@link guardStaging}).
 *
 * Names in the destination's directory may be changed by whoever can write to it, so each one is
 * checked where it matters (see {@link place}): the source name is still the file copied, the
 * staging name still the file written, and after the link or rename the final name is that file;
 * else a {@link TempFileReplacedError} (or, for a source name gone, a `FileSystemError` with
 * `ENOENT`: for a claim, the lease was lost) and the source stays.
 */
export async function copyAcrossDevices(move: Move): Promise<void> {
  const alreadyKept = !move.overwrite && (await destinationTaken(move, move.source));
  const placed = alreadyKept ? undefined : await stageAndPlace(move, move.source);
  await removeSourceOrUndo(move, placed);
}

/**
 * Opens a file to be moved: never following, never blocking, and only if it is the library's own
 * file (a regular file with one link, of `identity` when known), else a `TempFileReplacedError`.
 */
export async function openSource(
  from: string,
  shownFrom: string,
  identity: FileIdentity | undefined,
  alsoAccept?: (stat: Stats) => Promise<boolean>,
): Promise<FileHandle> {
  try {
    return await openOwnFileHandle(from, constants.O_RDONLY, identity, shownFrom, alsoAccept);
  } catch (err) {
    throw toFileSystemError('read', shownFrom, err);
  }
}

/** Fails early, before a copy, when the destination is taken; true when it holds this file already. */
async function destinationTaken(move: Move, source: FileHandle): Promise<boolean> {
  try {
    await fs.promises.lstat(move.target);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return false;
    throw toFileSystemError('check the destination', move.to, err);
  }
  if (await sameBytes(move, source)) return true;
  throw new DestinationExistsError(move.to);
}

/** The staging file: its name (acted on, and as shown), and the file written, by its descriptor. */
interface Staging {
  readonly name: string;
  readonly shown: string;
  readonly identity: FileIdentity;
  /** Bytes written, once the copy is done. */
  size: number;
  /** Its removal should the process end meanwhile. */
  readonly guard: StagingGuard;
}

/** Copies to a staging name, then places it; returns the identity of the file now at the final name, or undefined when an earlier keep() had placed it. */
async function stageAndPlace(move: Move, source: FileHandle): Promise<FileIdentity | undefined> {
  const { staging, handle } = await createStaging(move);
  let stagedNameLeft = true;
  try {
    try {
      staging.size = await copyContent(source, handle);
    } catch (err) {
      throw toDestinationError('copy the file to', move.to, err);
    } finally {
      await handle.close().catch(() => {});
    }
    const placed = await place(move, staging, source);
    stagedNameLeft = placed.stagedNameLeft;
    await move.dir.sync(); // the destination name is on disk before the source, the only other copy, goes
    return placed.placed ? staging.identity : undefined;
  } finally {
    if (stagedNameLeft) await removeStaging(move, staging);
    staging.guard.drop();
  }
}

async function createStaging(move: Move): Promise<{ staging: Staging; handle: FileHandle }> {
  for (let attempt = 1; ; attempt++) {
    const name = keepStagingName(path.basename(move.to), randomName());
    const guard = guardStaging(move.dir.base, name);
    let handle: FileHandle;
    try {
      handle = await fs.promises.open(path.join(move.dir.base, name), CREATE_EXCLUSIVE, 0o600);
    } catch (err) {
      guard.drop();
      if (systemErrorCode(err) !== 'EEXIST' || attempt === STAGING_ATTEMPTS) {
        throw toDestinationError('create a staging file next to', move.to, err);
      }
      continue;
    }
    guard.opened(handle.fd);
    // The file just created, by its descriptor: what the staging name must still be when it is placed.
    let stat: Stats;
    try {
      stat = await handle.stat();
    } catch (err) {
      guard.drop(); // before the descriptor closes: its number may soon name another file
      await handle.close().catch(() => {});
      await fs.promises.unlink(path.join(move.dir.base, name)).catch(() => {});
      throw toDestinationError('create a staging file next to', move.to, err);
    }
    const identity = { dev: stat.dev, ino: stat.ino };
    guard.made(identity);
    const shown = path.join(path.dirname(move.to), name);
    return { staging: { name, shown, identity, size: 0, guard }, handle };
  }
}

// Streams in constant memory, keeps the source's times (as a rename would), and fsyncs, so that
// the name placed next is never a file whose bytes are still in flight. Returns the bytes written.
async function copyContent(source: FileHandle, target: FileHandle): Promise<number> {
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
  return position;
}

/**
 * Gives the staged file the destination name. Right before, the source name must still be the
 * file copied ({@link assertSourceHeld}: a claim taken over since has lost it) and the staging name
 * the very file written ({@link assertStaged}: whoever can write to the directory could have
 * renamed it away and put something else there); right after, the final name must be that file
 * ({@link assertPlaced}). Says whether the staging name is still there (to remove), and whether
 * this call placed the file (false when an earlier keep() had).
 */
async function place(move: Move, staging: Staging, source: FileHandle): Promise<{ stagedNameLeft: boolean; placed: boolean }> {
  const staged = path.join(move.dir.base, staging.name);
  await assertSourceHeld(move);
  await assertStaged(move, staging);
  try {
    if (move.overwrite) await fs.promises.rename(staged, move.target);
    else await fs.promises.link(staged, move.target);
  } catch (err) {
    const code = systemErrorCode(err);
    if (move.overwrite) throw toDestinationError('keep the file at', move.to, err);
    if (code === 'EEXIST') {
      if (await sameBytes(move, source)) return { stagedNameLeft: true, placed: false };
      throw new DestinationExistsError(move.to, err);
    }
    if (!lacksHardLinks(code)) throw toDestinationError('keep the file at', move.to, err);
    await renameIfAbsent(move, staged);
    await assertPlaced(move, staging.identity);
    return { stagedNameLeft: false, placed: true };
  }
  await assertPlaced(move, staging.identity);
  return { stagedNameLeft: !move.overwrite, placed: true };
}

/** Advice of a {@link TempFileReplacedError} for a name in the destination's directory. */
function tamperedAdvice(move: Move): string {
  return (
    `Another process that can write to ${path.dirname(move.to)} changed it while keep() ran: the file was not kept there, ` +
    'nothing of yours was removed, and it stays with its handle (or claim). Keep files in a directory that only this user can write to, or one with the sticky bit set.'
  );
}

/**
 * The source name must still be the file opened and copied, by device and inode: else a
 * {@link TempFileReplacedError}, which a claim whose held name is gone reports as its lease lost.
 */
async function assertSourceHeld(move: Move): Promise<void> {
  let stat: Stats;
  try {
    stat = await fs.promises.lstat(move.from);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('check', move.shownFrom, err);
    throw new TempFileReplacedError(move.shownFrom, 'no file (it was renamed or removed while keep() ran)');
  }
  const found = otherThan(stat, move.identity);
  if (found !== undefined) throw new TempFileReplacedError(move.shownFrom, found);
}

/** The staging name, not followed, must be the file written: its device and inode, a regular file with one link, of the size written. */
async function assertStaged(move: Move, staging: Staging): Promise<void> {
  let stat: Stats;
  try {
    stat = await fs.promises.lstat(path.join(move.dir.base, staging.name));
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('check the staging file', staging.shown, err);
    throw new TempFileReplacedError(staging.shown, 'no file (the name was removed)', tamperedAdvice(move));
  }
  const found = replacedBy(stat, staging.identity) ?? (stat.size === staging.size ? undefined : `a file of ${stat.size} bytes where ${staging.size} were written`);
  if (found !== undefined) throw new TempFileReplacedError(staging.shown, found, tamperedAdvice(move));
}

/** After the link or rename, the final name, not followed, must be the file placed (`placed`). */
export async function assertPlaced(move: Move, placed: FileIdentity): Promise<void> {
  let stat: Stats;
  try {
    stat = await fs.promises.lstat(move.target);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('check the file kept at', move.to, err);
    throw new TempFileReplacedError(move.to, 'no file (the name was removed right after the file took it)', tamperedAdvice(move));
  }
  const found = otherThan(stat, placed);
  if (found !== undefined) throw new TempFileReplacedError(move.to, found, tamperedAdvice(move));
}

// Only the staging file this keep() wrote is removed: a name that is something else now was
// put there by someone else, and is theirs.
async function removeStaging(move: Move, staging: Staging): Promise<void> {
  const staged = path.join(move.dir.base, staging.name);
  try {
    const stat = await fs.promises.lstat(staged);
    if (otherThan(stat, staging.identity) !== undefined) {
      log('staging name %s holds something else now: left to its owner', staging.shown);
      return;
    }
    await fs.promises.unlink(staged);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') log('staging file left at %s: %s', staging.shown, systemErrorCode(err) ?? err);
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
    target = await fs.promises.open(move.target, READ_FLAGS);
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
    await fs.promises.lstat(move.target);
    throw new DestinationExistsError(move.to);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toDestinationError('keep the file at', move.to, err);
  }
  try {
    await fs.promises.rename(from, move.target);
  } catch (err) {
    throw toDestinationError('keep the file at', move.to, err);
  }
}

/** Removes the source once a rename moved it to the destination; a source name already gone is fine. */
export async function removeSource(move: Move): Promise<void> {
  try {
    await fs.promises.unlink(move.from);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', move.shownFrom, err);
  }
}

/**
 * Removes the source once the destination holds a copy or a second link of it. A source name gone
 * by then was taken by someone else after it was checked (for a claim: the entry was taken over):
 * the file this keep() placed (`placed`) is taken back, its final name removed only if it still
 * is that file, and a {@link TempFileReplacedError} is thrown.
 */
export async function removeSourceOrUndo(move: Move, placed: FileIdentity | undefined): Promise<void> {
  try {
    await fs.promises.unlink(move.from);
    return;
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') throw toFileSystemError('remove', move.shownFrom, err);
  }
  if (placed !== undefined) await undoPlacement(move, placed);
  throw new TempFileReplacedError(
    move.shownFrom,
    `no file (it was renamed or removed while keep() ran${placed === undefined ? '' : `; what keep() had placed at ${move.to} was taken back`})`,
  );
}

async function undoPlacement(move: Move, placed: FileIdentity): Promise<void> {
  try {
    const stat = await fs.promises.lstat(move.target);
    if (otherThan(stat, placed) !== undefined) return; // not ours any more: someone else's to remove
    await fs.promises.unlink(move.target);
    await move.dir.sync();
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') log('could not take back %s: %s', move.to, systemErrorCode(err) ?? err);
  }
}
