import { systemErrorCode, toFileSystemError, TempFileReplacedError, type TempFileError } from '../base/errors.js';
import { O_NOFOLLOW, fs } from './fs.js';
import { builtin } from '../base/builtin.js';
const nodeFs = builtin('node:fs');
const { constants } = builtin('node:fs');

// Every open the library makes of a name that already exists goes through here. Such a name may
// have been swapped since the library made it: for a symlink (refused by O_NOFOLLOW), a FIFO or a
// device (an open that would block forever, pinning a thread-pool thread, without O_NONBLOCK), or
// a hard link to a file outside the root (which nothing in the open itself tells apart). So the
// open never follows, never blocks and never takes a terminal; the opened descriptor is then
// fstat'ed and must be a regular file with one link, the very inode the library created.

/** Never follow a symlink at the name, never block on a FIFO or a device, never take a terminal. */
export const OPEN_EXISTING = O_NOFOLLOW | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** A file's device and inode, as recorded when the library created it. @internal */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** What an fstat or lstat says of a name, as far as the checks go. */
export interface StatLike {
  readonly dev: number;
  readonly ino: number;
  readonly nlink: number;
  isFile(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The identity of a file the library just created (an fstat of its new descriptor). */
export function identityOf(stat: { readonly dev: number; readonly ino: number }): FileIdentity {
  return { dev: stat.dev, ino: stat.ino };
}

function kindOf(stat: StatLike): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'something that is not a regular file';
}

/**
 * What stands where the library's own file should be, or undefined when it is that file: a
 * regular file with exactly one link (no other name reaches it) and, when `expected` is known,
 * the same device and inode.
 */
export function replacedBy(stat: StatLike, expected: FileIdentity | undefined): string | undefined {
  if (!stat.isFile()) return kindOf(stat);
  const otherInode = expected !== undefined && (stat.dev !== expected.dev || stat.ino !== expected.ino);
  if (stat.nlink !== 1) return `a hard link (${stat.nlink} links)${otherInode ? ' to another file' : ''}`;
  if (otherInode) return 'another file (inode changed)';
  return undefined;
}

/** What stands at a name instead of the file `expected`, whatever its link count; undefined when it is that file. */
export function otherThan(stat: StatLike, expected: FileIdentity): string | undefined {
  if (!stat.isFile()) return kindOf(stat);
  return stat.dev !== expected.dev || stat.ino !== expected.ino ? 'another file (inode changed)' : undefined;
}

/** Throws {@link TempFileReplacedError} unless `stat` is the library's own file (see {@link replacedBy}). */
export function assertOwnFile(stat: StatLike, expected: FileIdentity | undefined, shownPath: string): void {
  const found = replacedBy(stat, expected);
  if (found !== undefined) throw new TempFileReplacedError(shownPath, found);
}

/**
 * The error of a failed non-blocking open, typed and naming `shownPath` (the public path, never
 * the `/proc/<pid>/fd/<fd>/<name>` the open went through): ENXIO is what opening a FIFO for
 * writing with no reader, or a socket, answers (a {@link TempFileReplacedError}); any other error
 * (ELOOP for a symlink, EMFILE, ENOENT, EIO...) is the matching {@link FileSystemError} or
 * {@link NoSpaceError} of {@link toFileSystemError}.
 */
function openFailure(err: unknown, shownPath: string): TempFileError {
  if (systemErrorCode(err) === 'ENXIO') return new TempFileReplacedError(shownPath, 'a FIFO or a socket');
  return toFileSystemError('open', shownPath, err);
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // the check already failed; that failure is the one to report
  }
}

/**
 * Opens an existing file of the library (`flags` | {@link OPEN_EXISTING}) in the thread pool and
 * checks the descriptor (one inline fstat) before calling back with it. With `truncate`, the file
 * is truncated only once checked: `flags` must not hold O_TRUNC, which would empty whatever the
 * name reaches before any check. Every error it calls back with is a {@link TempFileError} naming
 * `shownPath`.
 */
export function openOwnFile(
  path: string,
  flags: number,
  expected: FileIdentity | undefined,
  shownPath: string,
  truncate: boolean,
  callback: (error: unknown, fd?: number) => void,
  learn?: (identity: FileIdentity) => void,
): void {
  fs.open(path, flags | OPEN_EXISTING, 0o600, (openError, fd) => {
    if (openError) return callback(openFailure(openError, shownPath));
    try {
      const stat = fs.fstatSync(fd);
      assertOwnFile(stat, expected, shownPath);
      if (expected === undefined) learn?.(identityOf(stat));
    } catch (error) {
      closeQuietly(fd);
      return callback(toFileSystemError('check', shownPath, error));
    }
    if (!truncate) return callback(null, fd);
    fs.ftruncate(fd, 0, (truncateError) => {
      if (!truncateError) return callback(null, fd);
      closeQuietly(fd);
      callback(toFileSystemError('truncate', shownPath, truncateError));
    });
  });
}

/**
 * A FileHandle twin of {@link openOwnFile} (read-only uses: keep()'s source), without truncation.
 * `alsoAccept` may let through a file that fails the check for a reason its caller knows to be
 * benign (a keep() interrupted between its link and its unlink left a second name).
 */
export async function openOwnFileHandle(
  path: string,
  flags: number,
  expected: FileIdentity | undefined,
  shownPath: string,
  alsoAccept: (stat: import('node:fs').Stats) => Promise<boolean> = async () => false,
): Promise<import('node:fs').promises.FileHandle> {
  let handle: import('node:fs').promises.FileHandle;
  try {
    handle = await fs.promises.open(path, flags | OPEN_EXISTING);
  } catch (err) {
    throw openFailure(err, shownPath);
  }
  try {
    const stat = await handle.stat();
    if (replacedBy(stat, expected) !== undefined && !(await alsoAccept(stat))) assertOwnFile(stat, expected, shownPath);
    return handle;
  } catch (err) {
    await handle.close().catch(() => {});
    throw toFileSystemError('check', shownPath, err);
  }
}

type OpenCallback = (error: NodeJS.ErrnoException | null, fd: number) => void;

/**
 * The `fs` option of `createReadStream` / `createWriteStream`: the stream opens the file through
 * {@link openOwnFile}, so a replaced file is an 'error' event (a {@link TempFileReplacedError})
 * before a byte is read or written. The stream's other calls are those of `fs`.
 */
export function ownFileStreamFs(
  expected: FileIdentity | undefined,
  shownPath: string,
  truncate: boolean,
  learn?: (identity: FileIdentity) => void,
): { open: typeof nodeFs.open; close: typeof nodeFs.close; read: typeof nodeFs.read; write: typeof nodeFs.write } {
  const open = (path: import('node:fs').PathLike, flags: number, _mode: unknown, callback: OpenCallback) => {
    openOwnFile(String(path), flags, expected, shownPath, truncate, (error, fd) =>
      callback((error as NodeJS.ErrnoException | null) ?? null, fd ?? -1),
      learn,
    );
  };
  return { open: open as unknown as typeof nodeFs.open, close: fs.close, read: fs.read, write: fs.write };
}
